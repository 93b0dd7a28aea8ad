// Which store a broker uses (docs/durability.md, "The store"), and opening
// it: a store that cannot be used is reported, and the broker runs on
// without it, refusing durable messages.
#include <cstdlib>
#include <filesystem>

#include "broker/store_open.hpp"
#include "broker/store_sqlite.hpp"
#include "troupe/broker.hpp"

namespace troupe {

std::string default_store_path(const std::string& listen) {
  if (const char* env = std::getenv("TROUPE_STORE"); env && *env) return env;
  if (listen.rfind("ipc://", 0) == 0) return listen.substr(6) + ".store";
  std::string dir;
  if (const char* state = std::getenv("XDG_STATE_HOME"); state && *state) {
    dir = std::string(state) + "/troupe";
  } else if (const char* home = std::getenv("HOME"); home && *home) {
    dir = std::string(home) + "/.local/state/troupe";
  } else {
    dir = "/tmp/troupe-state";
  }
  std::string name;
  for (const char c : listen) {
    const bool keep =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
    name += keep ? c : '_';
  }
  return dir + "/" + name + ".store";
}

std::unique_ptr<durable::store> open_store(const broker_options& opt, std::string& error) {
  const auto path = opt.store.empty() ? default_store_path(opt.listen) : opt.store;
  if (path == "none") return nullptr;
  try {
    if (opt.store.empty()) {  // the default directory may not exist yet
      std::error_code ec;
      std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    }
    return std::make_unique<durable::sqlite_store>(path);
  } catch (const durable::store_error& e) {
    error = e.what();
    return nullptr;
  }
}

}  // namespace troupe
