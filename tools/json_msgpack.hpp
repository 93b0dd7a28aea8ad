// JSON on the command line, MessagePack on the wire.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace troupe::cli {

// Encodes JSON texts as one msgpack array (the args of a REQUEST).
// Throws std::invalid_argument naming the argument that is not valid JSON
// or holds a number out of range.
std::string json_args_to_msgpack(const std::vector<std::string>& args);

// Decodes one msgpack value (within the given nesting depth) as JSON, as
// docs/operations.md describes: binary becomes an array of byte values, ext
// {"ext": type, "data": [...]}, bytes of a str that are not UTF-8 U+FFFD; a
// map key that is not a str becomes its JSON text, and inside such a key an
// array or map key becomes "msgpack:" and its hex, so the output is linear in
// the input. Throws msgpack's exceptions on malformed or over-limit input.
nlohmann::json msgpack_to_json(const std::string& bytes, std::size_t max_depth = 32);

}  // namespace troupe::cli
