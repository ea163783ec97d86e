// GGUF reader: every fixture opens, and what it reports agrees with the fixture README's facts.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "gguf/gguf.h"
#include "gguf/summary.h"
#include "test_support.h"

using jing::GgmlType;
using jing::gguf::File;

namespace {

std::vector<std::filesystem::path> all_fixture_ggufs() {
  std::vector<std::filesystem::path> out;
  auto dir = jing::test::fixtures_dir();
  if (dir.empty()) return out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.path().extension() == ".gguf") out.push_back(e.path());
  return out;
}

}  // namespace

TEST(GgufReader, EveryFixtureOpensAndShowJsonAgrees) {
  auto files = all_fixture_ggufs();
  if (files.empty()) GTEST_SKIP() << "fixtures not found";
  EXPECT_GE(files.size(), 7u);
  for (const auto& path : files) {
    SCOPED_TRACE(path.string());
    File f = File::open(path);
    auto r = jing::test::run_jing({"show", "--json", path.string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["architecture"], f.architecture());
    EXPECT_EQ(j["tensor_count"], f.tensors().size());
    std::map<std::string, int64_t> counts;
    for (const auto& t : f.tensors()) counts[std::string(jing::traits(t.type).name)]++;
    ASSERT_EQ(j["types"].size(), counts.size());
    for (const auto& [type, n] : counts) EXPECT_EQ(j["types"][type]["tensors"], n) << type;
  }
}

// Facts the fixture README states about the tiny models.
TEST(GgufReader, FixtureModelsMatchTheirDescription) {
  struct Expect {
    const char* file;
    const char* arch;
    int layers;
  };
  for (auto e : {Expect{"models/llama-f16.gguf", "llama", 2}, Expect{"models/qwen2-f16.gguf", "qwen2", 2},
                 Expect{"models/deepseek2-f16.gguf", "deepseek2", 3}}) {
    JING_FIXTURE_OR_SKIP(path, e.file);
    SCOPED_TRACE(e.file);
    File f = File::open(path);
    EXPECT_EQ(f.architecture(), e.arch);
    EXPECT_EQ(f.arch_int("embedding_length"), 256);
    EXPECT_EQ(f.arch_int("feed_forward_length"), 512);
    EXPECT_EQ(f.arch_int("attention.head_count"), 4);
    if (std::string(e.arch) != "deepseek2") EXPECT_EQ(f.arch_int("block_count"), e.layers);
    EXPECT_EQ(f.get_array("tokenizer.ggml.tokens")->items.size(), 2048u);
    EXPECT_EQ(f.get_string("tokenizer.ggml.pre"), "gpt-2");
    EXPECT_TRUE(f.has("tokenizer.chat_template"));
    // F16 models: matrices are f16, norms f32.
    for (const auto& t : f.tensors()) {
      if (t.n_dims == 1) EXPECT_EQ(t.type, GgmlType::F32) << t.name;
    }
  }
  JING_FIXTURE_OR_SKIP(ds, "models/deepseek2-f16.gguf");
  File f = File::open(ds);
  EXPECT_EQ(f.arch_int("block_count"), 3);
  EXPECT_EQ(f.arch_int("expert_count"), 8);
  EXPECT_EQ(f.arch_int("expert_used_count"), 2);
  EXPECT_EQ(f.arch_int("expert_gating_func"), 2);
}

TEST(GgufReader, UnslothStyleMixHasTheDescribedTypes) {
  JING_FIXTURE_OR_SKIP(path, "quantized/deepseek2-UD-IQ1_S.gguf");
  File f = File::open(path);
  int gate_up = 0, down = 0;
  for (const auto& t : f.tensors()) {
    if (t.name.find("ffn_gate_exps") != std::string::npos || t.name.find("ffn_up_exps") != std::string::npos) {
      EXPECT_EQ(t.type, GgmlType::IQ1_S) << t.name;
      gate_up++;
    } else if (t.name.find("ffn_down_exps") != std::string::npos) {
      EXPECT_EQ(t.type, GgmlType::IQ2_XXS) << t.name;
      down++;
    }
  }
  EXPECT_EQ(gate_up, 4);  // two MoE layers
  EXPECT_EQ(down, 2);
  EXPECT_EQ(f.tensor("output.weight").type, GgmlType::Q6_K);
  EXPECT_EQ(f.tensor("token_embd.weight").type, GgmlType::Q4_K);
}

TEST(GgufReader, TensorDataLiesInsideTheMapping) {
  JING_FIXTURE_OR_SKIP(path, "models/llama-f16.gguf");
  File f = File::open(path);
  auto size = std::filesystem::file_size(path);
  const auto& first = f.tensors().front();
  const uint8_t* base = first.data - first.offset;
  for (const auto& t : f.tensors()) {
    EXPECT_EQ(t.offset % f.alignment(), 0u);
    EXPECT_LE(static_cast<uint64_t>(t.data - base) + t.nbytes + (base - first.data + first.offset), size);
  }
}

TEST(GgufReader, MissingFileAndNonGgufAreClearErrors) {
  jing::test::TempDir tmp;
  EXPECT_THROW(File::open(tmp / "nope.gguf"), jing::Error);
  std::ofstream(tmp / "text.gguf") << "hello, this is not a model file at all";
  try {
    File::open(tmp / "text.gguf");
    FAIL() << "expected an error";
  } catch (const jing::Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad magic"), std::string::npos) << e.what();
  }
}
