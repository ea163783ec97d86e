// GGUF writer: round trips, split files, atomic output.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "common/error.h"
#include "gguf/gguf.h"
#include "gguf/writer.h"
#include "test_support.h"

using jing::GgmlType;
using namespace jing::gguf;

namespace {

void expect_same_model(const File& a, const File& b) {
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (const auto& ta : a.tensors()) {
    const TensorInfo* tb = b.find_tensor(ta.name);
    ASSERT_NE(tb, nullptr) << ta.name;
    EXPECT_EQ(ta.type, tb->type) << ta.name;
    EXPECT_EQ(ta.n_dims, tb->n_dims) << ta.name;
    for (int d = 0; d < kMaxDims; ++d) EXPECT_EQ(ta.ne[d], tb->ne[d]) << ta.name;
    ASSERT_EQ(ta.nbytes, tb->nbytes) << ta.name;
    EXPECT_EQ(std::memcmp(ta.data, tb->data, ta.nbytes), 0) << ta.name;
  }
  for (const auto& kv : a.metadata()) {
    if (kv.key.rfind("split.", 0) == 0) continue;
    const Value* v = b.find(kv.key);
    ASSERT_NE(v, nullptr) << kv.key;
    EXPECT_TRUE(*v == kv.value) << kv.key;
  }
}

}  // namespace

TEST(GgufWriter, RoundTripsEveryValueTypeAndNestedArrays) {
  jing::test::TempDir tmp;
  Writer w;
  w.set("general.architecture", Value::str("llama"));
  w.set("u8", Value::u8(200));
  w.set("i8", Value::i8(-100));
  w.set("u16", Value::u16(60000));
  w.set("i16", Value::i16(-30000));
  w.set("u32", Value::u32(4000000000u));
  w.set("i32", Value::i32(-2000000000));
  w.set("u64", Value::u64(1ull << 60));
  w.set("i64", Value::i64(-(1ll << 60)));
  w.set("f32", Value::f32(1.5f));
  w.set("f64", Value::f64(-2.25));
  w.set("bool", Value::boolean(true));
  w.set("str", Value::str("鲸 whale"));
  w.set("strs", Value::string_array({"a", "", "ccc"}));
  w.set("nested", Value::array(ValueType::ARRAY, {Value::array(ValueType::INT32, {Value::i32(1), Value::i32(2)}),
                                                  Value::array(ValueType::INT32, {})}));
  std::vector<float> a(64), b(32 * 3);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i);
  for (size_t i = 0; i < b.size(); ++i) b[i] = -static_cast<float>(i);
  w.add_tensor({"a", GgmlType::F32, {64}});
  w.add_tensor({"b", GgmlType::F32, {32, 3}});
  w.write(tmp / "m.gguf", {a.data(), b.data()});

  File f = File::open(tmp / "m.gguf");
  EXPECT_EQ(f.version(), 3u);
  ASSERT_EQ(f.metadata().size(), w.metadata().size());
  for (size_t i = 0; i < w.metadata().size(); ++i) {
    EXPECT_EQ(f.metadata()[i].key, w.metadata()[i].key);
    EXPECT_TRUE(f.metadata()[i].value == w.metadata()[i].value) << w.metadata()[i].key;
  }
  EXPECT_EQ(f.get_int("u64"), int64_t{1} << 60);
  EXPECT_EQ(f.get_string("str"), "鲸 whale");
  EXPECT_EQ(f.get_array("nested")->items[0].as_array().items[1].as_int(), 2);
  EXPECT_THROW(f.get_string("u8"), jing::Error);
  const auto& tb = f.tensor("b");
  EXPECT_EQ(tb.ne[0], 32);
  EXPECT_EQ(tb.ne[1], 3);
  EXPECT_EQ(std::memcmp(tb.data, b.data(), b.size() * 4), 0);
  EXPECT_FALSE(std::filesystem::exists(tmp / "m.gguf.tmp"));
}

TEST(GgufWriter, RewritesFixtureIdentically) {
  JING_FIXTURE_OR_SKIP(path, "quantized/deepseek2-UD-IQ1_S.gguf");
  jing::test::TempDir tmp;
  File src = File::open(path);
  Writer w;
  w.copy_metadata(src);
  std::vector<const void*> data;
  for (const auto& t : src.tensors()) {
    w.add_tensor({t.name, t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims)});
    data.push_back(t.data);
  }
  w.write(tmp / "copy.gguf", data);
  expect_same_model(src, File::open(tmp / "copy.gguf"));
}

TEST(GgufWriter, UnfinishedFileLeavesNothingBehind) {
  jing::test::TempDir tmp;
  {
    Writer w;
    w.add_tensor({"a", GgmlType::F32, {8}});
    w.add_tensor({"b", GgmlType::F32, {8}});
    w.begin(tmp / "x.gguf");
    float z[8] = {};
    w.write_tensor_data(z, sizeof z);
    EXPECT_THROW(w.write_tensor_data(z, 4), jing::Error);  // wrong size
    EXPECT_THROW(w.finish(), jing::Error);                  // a tensor has no data
  }
  EXPECT_FALSE(std::filesystem::exists(tmp / "x.gguf"));
  EXPECT_FALSE(std::filesystem::exists(tmp / "x.gguf.tmp"));
}

TEST(GgufWriter, RejectsShapesThatDoNotFitTheBlockSize) {
  Writer w;
  EXPECT_THROW(w.add_tensor({"q", GgmlType::Q4_K, {100, 2}}), jing::Error);
  EXPECT_THROW(w.add_tensor({"q", GgmlType::F32, {}}), jing::Error);
}

// Acceptance: a fixture written as a 3-part split loads tensor-for-tensor identical to the
// unsplit file, whichever part is named.
TEST(GgufSplit, ThreePartSplitLoadsIdenticallyFromAnyPart) {
  for (const char* rel : {"models/deepseek2-f16.gguf", "quantized/llama-Q4_K_M.gguf"}) {
    JING_FIXTURE_OR_SKIP(path, rel);
    SCOPED_TRACE(rel);
    jing::test::TempDir tmp;
    File whole = File::open(path);
    auto parts = write_split(whole, (tmp / "model").string(), 3);
    ASSERT_EQ(parts.size(), 3u);
    EXPECT_EQ(parts[0].filename(), "model-00001-of-00003.gguf");
    for (const auto& p : parts) {
      File split = File::open(p);
      EXPECT_EQ(split.n_parts(), 3);
      expect_same_model(whole, split);
      expect_same_model(split, whole);
    }
    // Every part holds some tensors, and a missing part is a clear error.
    for (const auto& p : parts) EXPECT_GT(File::open(p, {.load_split_parts = false}).tensors().size(), 0u);
    std::filesystem::remove(parts[2]);
    try {
      File::open(parts[0]);
      FAIL() << "expected an error";
    } catch (const jing::Error& e) {
      EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos) << e.what();
    }
  }
}

TEST(GgufSplit, InconsistentSplitKeysAreRejected) {
  JING_FIXTURE_OR_SKIP(path, "models/llama-f16.gguf");
  jing::test::TempDir tmp;
  File whole = File::open(path);
  auto parts = write_split(whole, (tmp / "m").string(), 2);
  // Swap the parts: split.no no longer matches the file name.
  std::filesystem::rename(parts[0], tmp / "swap");
  std::filesystem::rename(parts[1], parts[0]);
  std::filesystem::rename(tmp / "swap", parts[1]);
  EXPECT_THROW(File::open(parts[0]), jing::Error);
}

TEST(GgufSplit, NameParsing) {
  auto s = parse_split_name("DeepSeek-R1-UD-IQ1_S-00002-of-00003.gguf");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->prefix, "DeepSeek-R1-UD-IQ1_S");
  EXPECT_EQ(s->index, 1);
  EXPECT_EQ(s->count, 3);
  EXPECT_FALSE(parse_split_name("model.gguf"));
  EXPECT_FALSE(parse_split_name("m-00004-of-00003.gguf"));
  EXPECT_EQ(split_path("x/m", 0, 3), "x/m-00001-of-00003.gguf");
}
