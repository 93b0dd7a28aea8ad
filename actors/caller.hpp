// A worker process's calls to other actors (docs/concepts.md, "Calling
// other actors"): one troupe::client for every instance's tells and asks,
// built on the first call, and the queue of coroutines whose replies came,
// which the thread running user code drains when its descriptor is readable.
//
// Thread-safety: tell/ask from the user-code thread; resume_later from the
// client's thread; take() and fd() from the user-code thread.
#pragma once

#include <coroutine>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "troupe/calls.hpp"
#include "troupe/worker.hpp"

namespace troupe {

class caller final : public detail::call_site {
 public:
  // Throws std::system_error when its wake-up descriptor cannot be made.
  explicit caller(const worker_options& options);
  ~caller() override;
  caller(const caller&) = delete;
  caller& operator=(const caller&) = delete;

  void tell(std::string_view address, std::string_view method, std::string args) override;
  void ask(std::string_view address, std::string_view method, std::string args, const call_options& opts,
           client::callback done) override;
  void resume_later(std::coroutine_handle<> h) override;

  // Readable while coroutines wait to be resumed.
  int fd() const noexcept { return fd_; }
  // The coroutines to resume now, in the order their replies came.
  std::vector<std::coroutine_handle<>> take();
  // Ends every ask still out with deadline_exceeded ("the client was
  // closed"), so each waiting coroutine is queued to resume; joins the
  // client's thread.
  void close();

 private:
  client& connection();

  const worker_options& opt_;
  std::unique_ptr<client> client_;  // built on the first call
  int fd_ = -1;
  std::mutex mu_;
  std::vector<std::coroutine_handle<>> ready_;  // guarded by mu_
};

}  // namespace troupe
