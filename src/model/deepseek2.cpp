#include "common/error.h"
#include "model/base.h"

namespace jing::model {

std::unique_ptr<Model> make_deepseek2(gguf::File, const ModelOptions&) { throw Error("deepseek2 is not implemented yet"); }

}  // namespace jing::model
