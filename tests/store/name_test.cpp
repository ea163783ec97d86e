// Model names and file choice: what users type maps to the right repository files, and nothing
// that could leave the store is accepted.
#include <gtest/gtest.h>

#include "common/error.h"
#include "store/hub.h"
#include "store/name.h"

using namespace jing::store;

TEST(ModelName, ParsesEveryForm) {
  auto a = parse_model_ref("deepseek-r1:7b");
  EXPECT_EQ(a.kind, ModelRef::Kind::Library);
  EXPECT_EQ(a.display(), "deepseek-r1:7b");
  EXPECT_EQ(parse_model_ref("deepseek-r1").tag, "latest");
  auto b = parse_model_ref("hf.co/unsloth/DeepSeek-R1-GGUF:UD-IQ1_S");
  EXPECT_EQ(b.kind, ModelRef::Kind::HfQuant);
  EXPECT_EQ(b.owner, "unsloth");
  EXPECT_EQ(b.quant, "UD-IQ1_S");
  EXPECT_EQ(parse_model_ref("hf.co/bartowski/x-GGUF").quant, "Q4_K_M");  // llama.cpp's default
  auto c = parse_model_ref("https://huggingface.co/unsloth/DeepSeek-R1-GGUF/DeepSeek-R1-UD-IQ1_S/DeepSeek-R1-UD-IQ1_S-00001-of-00003.gguf");
  EXPECT_EQ(c.kind, ModelRef::Kind::HfFile);
  EXPECT_EQ(c.file, "DeepSeek-R1-UD-IQ1_S/DeepSeek-R1-UD-IQ1_S-00001-of-00003.gguf");
  EXPECT_EQ(c.store_dir().string().find(".."), std::string::npos);
}

TEST(ModelName, RejectsTraversalAndOddCharacters) {
  for (const char* bad : {"", "..", "../x", "hf.co/../x:Q4", "hf.co/a/..", "hf.co/a/b/../c.gguf", "hf.co/a/b/.x.gguf",
                          "hf.co/a/b/c.txt", "a b", "x:y:z/..", "hf.co/a", "name:", ":tag", "hf.co/a/b:Q4 K", "hf.co/a/b:..",
                          "x\ny", "/etc/passwd"})
    EXPECT_THROW(parse_model_ref(bad), jing::Error) << bad;
}

TEST(ModelName, LibraryTableMapsEveryDeepSeekTag) {
  for (const char* tag : {"1.5b", "7b", "8b", "14b", "32b", "70b", "671b", "latest"}) {
    auto t = library_target(parse_model_ref(std::string("deepseek-r1:") + tag));
    ASSERT_TRUE(t) << tag;
    EXPECT_EQ(t->kind, ModelRef::Kind::HfQuant);
    EXPECT_EQ(t->quant, std::string(tag) == "671b" ? "UD-IQ1_S" : "Q4_K_M") << tag;
  }
  EXPECT_FALSE(library_target(parse_model_ref("deepseek-r1:3b")));
  EXPECT_FALSE(library_target(parse_model_ref("mistral:7b")));
}

TEST(ChooseFiles, PicksWholeTokenQuantsAndEverySplitPart) {
  std::vector<RemoteFile> files = {
      {"README.md", 10, ""},
      {"DeepSeek-R1-Distill-Qwen-7B-Q4_K.gguf", 1, "a"},
      {"DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.gguf", 2, "b"},
      {"DeepSeek-R1-Distill-Qwen-7B-Q4_K_S.gguf", 3, "c"},
      {"DeepSeek-R1-UD-IQ1_S/DeepSeek-R1-UD-IQ1_S-00002-of-00003.gguf", 5, "e"},
      {"DeepSeek-R1-UD-IQ1_S/DeepSeek-R1-UD-IQ1_S-00001-of-00003.gguf", 4, "d"},
      {"DeepSeek-R1-UD-IQ1_S/DeepSeek-R1-UD-IQ1_S-00003-of-00003.gguf", 6, "f"},
      {"mmproj-Q4_K_M.gguf", 7, "g"},
  };
  auto q = choose_files(files, "q4_k_m");
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q[0].sha256, "b");
  EXPECT_EQ(choose_files(files, "Q4_K")[0].sha256, "a");
  auto s = choose_files(files, "UD-IQ1_S");
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].sha256, "d");
  EXPECT_EQ(s[2].sha256, "f");
  EXPECT_EQ(choose_files(files, "IQ1_S").size(), 3u);  // "-" delimits tokens: UD-IQ1_S holds IQ1_S
  EXPECT_THROW(choose_files(files, "Q8_0"), jing::Error);
  files.pop_back();
  files.erase(files.begin() + 5);  // a split with a part missing
  EXPECT_THROW(choose_files(files, "UD-IQ1_S"), jing::Error);
}
