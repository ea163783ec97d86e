// Dropping a mapping's pages once the weights live elsewhere (the GPU): the process's resident
// memory falls by about the bytes dropped, and the bytes still read back from the file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <vector>

#include "gguf/gguf.h"
#include "test_support.h"

namespace jing {
namespace {

uint64_t resident_bytes() {
  std::ifstream in("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  in >> size >> resident;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

TEST(GgufRelease, DroppedPagesLeaveTheResidentSetAndReadBack) {
  test::TempDir dir;
  const size_t n = size_t{32} << 20;
  std::vector<uint8_t> bytes(n);
  for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<uint8_t>(i * 2654435761u >> 13);
  const auto path = dir / "w.bin";
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(n));
  gguf::MappedFile m(path);
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const volatile uint8_t* touch = m.data();
  uint64_t sum = 0, want = 0;
  for (size_t i = 0; i < n; i += page) sum += touch[i], want += bytes[i];  // every page resident
  ASSERT_EQ(sum, want);
  const uint64_t before = resident_bytes();
  EXPECT_EQ(m.release(m.data(), n), n);
  const uint64_t after = resident_bytes();
  EXPECT_GT(before, after + (n * 9 / 10)) << "resident " << before << " -> " << after;
  EXPECT_EQ(0, std::memcmp(m.data(), bytes.data(), n));  // read again from the file
  // Only whole pages inside the range; nothing outside the mapping.
  EXPECT_EQ(m.release(m.data() + 1, page), 0u);
  EXPECT_EQ(m.release(m.data() + 1, 3 * page), 2 * page);
  EXPECT_EQ(m.release(bytes.data(), page), 0u);
  EXPECT_EQ(m.release(m.data() + n - page, 2 * page), 0u);
}

}  // namespace
}  // namespace jing
