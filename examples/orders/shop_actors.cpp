// docs/concepts.md, "Calling other actors": an `order` asks an `inventory`
// and a `ledger` from inside its method. All three are keyed: one instance
// per item, per account, per order.
#include <map>
#include <stdexcept>
#include <string>

#include "troupe/actor.hpp"

namespace shop {

// Stock of one item: inventory/<item>.
class inventory {
 public:
  // Takes `n` from stock; throws (the caller gets actor_error) when short.
  int reserve(int n) {
    if (n <= 0) throw troupe::bad_args_error("reserve a positive number of items");
    if (n > stock_) throw std::runtime_error("only " + std::to_string(stock_) + " left");
    stock_ -= n;
    return stock_;
  }
  void restock(int n) { stock_ += n; }
  int stock() const { return stock_; }

 private:
  int stock_ = 10;
};

// The balance of one account: ledger/<account>.
class ledger {
 public:
  long long charge(long long cents) {
    if (cents > balance_) throw std::runtime_error("insufficient funds");
    balance_ -= cents;
    return balance_;
  }
  long long balance() const { return balance_; }

 private:
  long long balance_ = 10000;
};

// One order: order/<id>. place() reserves the items, then charges the
// account; if the charge fails it puts the items back, so the stock stays
// right. (co_await is not allowed in a catch block, hence the two steps.) While it awaits, its worker serves
// other instances; this order handles its next message only after place() has returned.
class order {
 public:
  explicit order(const troupe::context& ctx) : ctx_(ctx) {}

  troupe::task<std::string> place(std::string item, int n, std::string account, long long cents) {
    if (state_ != "new") co_return state_;  // placed twice: the first outcome stands
    const auto left = co_await ctx_.ask<int>("inventory/" + item, "reserve", n);
    try {
      co_await ctx_.ask<long long>("ledger/" + account, "charge", cents);
    } catch (const troupe::error& e) {
      state_ = "refused: " + e.message();
    }
    if (state_ != "new") {
      co_await ctx_.ask<void>("inventory/" + item, "restock", n);  // put the items back
      co_return state_;
    }
    state_ = "placed: " + std::to_string(left) + " " + item + " left";
    co_return state_;
  }

  std::string state() const { return state_; }

 private:
  const troupe::context& ctx_;
  std::string state_ = "new";
};

const troupe::actor<inventory> inventory_actor{"inventory", troupe::method("reserve", &inventory::reserve),
                                               troupe::method("restock", &inventory::restock),
                                               troupe::method("stock", &inventory::stock)};
const troupe::actor<ledger> ledger_actor{"ledger", troupe::method("charge", &ledger::charge),
                                         troupe::method("balance", &ledger::balance)};
const troupe::actor<order> order_actor{"order", troupe::method("place", &order::place),
                                       troupe::method("state", &order::state)};

}  // namespace shop
