// The shop's actors: `cart/<customer>` keeps one cart per key, in one worker
// process; `pricing` takes an order and returns an invoice.
#include <cstdint>
#include <map>
#include <string>

#include "shop.hpp"
#include "troupe/actor.hpp"

namespace shop {

class cart {
 public:
  std::int64_t add(const std::string& item, std::int64_t count) { return items_[item] += count; }
  std::int64_t count(const std::string& item) const {
    const auto it = items_.find(item);
    return it == items_.end() ? 0 : it->second;
  }

 private:
  std::map<std::string, std::int64_t> items_;  // state, built on the first message for the key
};

class pricing {
 public:
  // Ten or more of an item cost 10% less.
  invoice quote(const order& o) const {
    const bool discounted = o.quantity >= 10;
    const std::int64_t total = o.quantity * o.unit_cents;
    return {o.item, discounted ? total * 9 / 10 : total, discounted};
  }
};

const troupe::actor<cart> cart_actor{"cart", troupe::method("add", &cart::add),
                                     troupe::method("count", &cart::count)};
const troupe::actor<pricing> pricing_actor{"pricing", troupe::method("quote", &pricing::quote)};

}  // namespace shop
