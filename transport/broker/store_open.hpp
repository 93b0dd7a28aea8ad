// Opening the broker's store from its options (store_open.cpp).
#pragma once

#include <memory>
#include <string>

#include "broker/store.hpp"

namespace troupe {

struct broker_options;

// The store of `opt.store` (empty: default_store_path), or null: with
// "none" (error stays empty), or when it cannot be opened for writing
// (error says why). Throws only std::bad_alloc.
std::unique_ptr<durable::store> open_store(const broker_options& opt, std::string& error);

}  // namespace troupe
