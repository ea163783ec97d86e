// Malformed GGUFs: each defect gives a jing::Error naming it; 10,000 mutations never crash.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "common/error.h"
#include "gguf/gguf.h"
#include "gguf/writer.h"
#include "test_support.h"

using namespace jing::gguf;

namespace {

// A raw GGUF image built field by field, so tests can write what the Writer refuses to.
struct Raw {
  std::string b;
  template <typename T>
  Raw& put(T v) {
    b.append(reinterpret_cast<const char*>(&v), sizeof v);
    return *this;
  }
  Raw& str(const std::string& s) {
    put<uint64_t>(s.size());
    b += s;
    return *this;
  }
  Raw& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return put<uint32_t>(kMagic).put<uint32_t>(version).put<uint64_t>(n_tensors).put<uint64_t>(n_kv);
  }
  Raw& tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    str(name).put<uint32_t>(static_cast<uint32_t>(ne.size()));
    for (auto d : ne) put<uint64_t>(d);
    return put<uint32_t>(type).put<uint64_t>(offset);
  }
  Raw& data(size_t n) {
    b.append((32 - b.size() % 32) % 32, '\0');
    b.append(n, '\x01');
    return *this;
  }
};

std::string error_of(const std::string& bytes) {
  return jing::test::error_of([&] { File::parse(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()); });
}

#define EXPECT_ERROR_MENTIONS(bytes, text) \
  EXPECT_NE(error_of(bytes).find(text), std::string::npos) << "error was: '" << error_of(bytes) << "'"

}  // namespace

TEST(GgufMalformed, EachDefectIsNamed) {
  EXPECT_ERROR_MENTIONS(std::string("GGUF"), "too small");
  EXPECT_ERROR_MENTIONS(Raw().put<uint32_t>(0x12345678).put<uint32_t>(3).put<uint64_t>(0).put<uint64_t>(0).b, "bad magic");
  EXPECT_ERROR_MENTIONS(Raw().header(0, 0, 1).b, "version 1");
  EXPECT_ERROR_MENTIONS(Raw().header(0, 0, 7).b, "unsupported GGUF version 7");
  EXPECT_ERROR_MENTIONS(Raw().header(0, 1u << 30).b, "metadata count");
  EXPECT_ERROR_MENTIONS(Raw().header(0, 1).str("k").put<uint32_t>(99).put<uint32_t>(0).b, "unknown value type 99");
  EXPECT_ERROR_MENTIONS(Raw().header(0, 1).str("k").put<uint32_t>(8).put<uint64_t>(1000).b, "runs past the end");
  EXPECT_ERROR_MENTIONS(Raw().header(0, 2).str("k").put<uint32_t>(4).put<uint32_t>(1).str("k").put<uint32_t>(4).put<uint32_t>(1).b,
                        "duplicate metadata key 'k'");
  EXPECT_ERROR_MENTIONS(Raw().header(0, 1).str("general.alignment").put<uint32_t>(4).put<uint32_t>(3).b, "power of two");
  EXPECT_ERROR_MENTIONS(Raw().header(0, 1).str("b").put<uint32_t>(7).put<uint8_t>(5).put<uint64_t>(0).b, "invalid bool");
  EXPECT_ERROR_MENTIONS(Raw().header(1, 0).tensor("t", {32}, 4, 0).data(128).b, "unknown ggml type id 4");
  EXPECT_ERROR_MENTIONS(Raw().header(1, 0).tensor("t", {32}, 31, 0).data(128).b, "unknown ggml type id 31");
  EXPECT_ERROR_MENTIONS(Raw().header(1, 0).tensor("t", {32, 1, 1, 1, 1}, 0, 0).data(128).b, "5 dimensions");
  EXPECT_ERROR_MENTIONS(Raw().header(1, 0).tensor("t", {0}, 0, 0).data(128).b, "invalid dimension");
  EXPECT_ERROR_MENTIONS(Raw().header(1, 0).tensor("t", {33}, 8, 0).data(128).b, "not a multiple");
  EXPECT_ERROR_MENTIONS(Raw().header(1, 0).tensor("t", {8}, 0, 4).data(128).b, "not aligned");
  EXPECT_ERROR_MENTIONS(Raw().header(1, 0).tensor("t", {64}, 0, 0).data(100).b, "past the end of the file");
  EXPECT_ERROR_MENTIONS(Raw().header(2, 0).tensor("a", {16}, 0, 0).tensor("b", {16}, 0, 32).data(256).b, "overlap");
  EXPECT_ERROR_MENTIONS(Raw().header(2, 0).tensor("a", {8}, 0, 0).tensor("a", {8}, 0, 32).data(256).b, "duplicate tensor name 'a'");
  EXPECT_ERROR_MENTIONS(Raw().header(1, 0).tensor("t", {1ull << 30, 1ull << 30}, 0, 0).data(16).b, "too many elements");
  // A valid image parses.
  EXPECT_EQ(error_of(Raw().header(2, 0).tensor("a", {8}, 0, 0).tensor("b", {8}, 1, 32).data(64).b), "");
}

TEST(GgufMalformed, TenThousandMutationsAndTruncationsAreRejectedCleanly) {
  std::string base;
  if (auto dir = jing::test::fixtures_dir(); !dir.empty() && std::filesystem::exists(dir / "quantized/deepseek2-UD-IQ1_S.gguf")) {
    base = jing::test::read_file(dir / "quantized/deepseek2-UD-IQ1_S.gguf");
  } else {
    base = Raw().header(2, 1).str("general.architecture").put<uint32_t>(8).str("llama").tensor("a", {8}, 0, 0).tensor("b", {8}, 1, 32).data(64).b;
  }
  // Mutations aim at the header and tensor table (the first 64 KiB), where the structure is.
  const size_t head = std::min<size_t>(base.size(), 64 * 1024);
  std::mt19937 rng(1234);
  int rejected = 0, accepted = 0;
  for (int i = 0; i < 10000; ++i) {
    std::string m = base;
    switch (i % 4) {
      case 0: m.resize(rng() % m.size()); break;  // truncation
      case 1:                                     // byte flips
        for (int k = 0, n = 1 + rng() % 8; k < n; ++k) m[rng() % head] ^= static_cast<char>(1 + rng() % 255);
        break;
      case 2: {  // a random 64-bit field overwritten with a huge or small value
        size_t at = rng() % (head - 8);
        uint64_t v = (rng() % 2) ? ~0ull - rng() % 1000 : rng() % 100000;
        std::memcpy(&m[at], &v, 8);
        break;
      }
      default: {  // a chunk deleted from the middle
        size_t at = rng() % head, len = 1 + rng() % 64;
        m.erase(at, len);
      }
    }
    try {
      File f = File::parse(reinterpret_cast<const uint8_t*>(m.data()), m.size());
      ++accepted;
      for (const auto& t : f.tensors()) ASSERT_LE(t.data + t.nbytes, reinterpret_cast<const uint8_t*>(m.data()) + m.size());
    } catch (const jing::Error& e) {
      ASSERT_GT(std::strlen(e.what()), 10u);
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 5000);
  std::printf("10000 mutated/truncated GGUFs: %d rejected with a message, %d still valid\n", rejected, accepted);
}
