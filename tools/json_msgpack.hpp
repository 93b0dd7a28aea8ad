// JSON on the command line, MessagePack on the wire.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace troupe::cli {

// Encodes JSON texts as one msgpack array (the args of a REQUEST).
// Throws std::invalid_argument naming the argument that is not valid JSON.
std::string json_args_to_msgpack(const std::vector<std::string>& args);

// Decodes one msgpack value (within the given nesting depth) as JSON. Binary
// becomes an array of byte values, ext becomes {"ext": type, "data": [...]}.
nlohmann::json msgpack_to_json(const std::string& bytes, std::size_t max_depth = 32);

}  // namespace troupe::cli
