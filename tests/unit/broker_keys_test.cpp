// The broker's side of CURVE without a handshake: key directories, the
// name policy file, and the rules for listening.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "broker/name_policy.hpp"
#include "broker/zap.hpp"

namespace troupe {
namespace {

namespace fs = std::filesystem;

class KeyDirs : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "troupe-keys-XXXXXX").string();
    root = ::mkdtemp(tmpl.data());
    for (const auto* d : {"workers", "clients", "admins", "all"}) fs::create_directory(root + "/" + d);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  // A new key pair in `all`; returns its public key.
  std::string make(const std::string& name) {
    curve::write_key_pair(root + "/all", name);
    return curve::read_certificate(root + "/all/" + name + ".key", false).public_key;
  }
  void put(const std::string& name, const std::string& dir) {
    fs::copy_file(root + "/all/" + name + ".key", root + "/" + dir + "/" + name + ".key");
  }
  key_table load(bool admins = true) {
    return key_table::load({root + "/workers", root + "/clients", admins ? root + "/admins" : ""});
  }
  std::string root;
};

TEST_F(KeyDirs, EachKeyHasTheRolesOfItsDirectoriesAndTheNameOfItsFile) {
  if (!curve::available()) GTEST_SKIP();
  const auto w = make("pool"), c = make("shop"), a = make("ops"), both = make("caller");
  put("pool", "workers");
  put("shop", "clients");
  put("ops", "admins");
  put("caller", "workers");
  put("caller", "clients");
  const auto t = load();
  EXPECT_EQ(t.size(), 4u);
  EXPECT_EQ(t.find(w)->name, "pool");
  EXPECT_EQ(t.find(w)->roles, peer_role::worker);
  EXPECT_EQ(t.find(c)->roles, peer_role::client);
  EXPECT_EQ(t.find(a)->roles, peer_role::client | peer_role::admin) << "an admin is a client too";
  EXPECT_EQ(t.find(both)->roles, peer_role::worker | peer_role::client);
  EXPECT_EQ(t.find("0000000000000000000000000000000000000000"), nullptr);
  EXPECT_EQ(t.count(peer_role::client), 3u);
}

TEST_F(KeyDirs, SecretFilesAndOtherFilesAreNotKeys) {
  if (!curve::available()) GTEST_SKIP();
  make("pool");
  fs::copy_file(root + "/all/pool.key_secret", root + "/workers/pool.key_secret");
  std::ofstream(root + "/workers/README") << "not a key";
  EXPECT_EQ(load().size(), 0u);
}

TEST_F(KeyDirs, ABadKeyFileOrDirectoryIsAnErrorNamingIt) {
  auto message = [&] {
    try {
      load();
      return std::string();
    } catch (const curve::key_error& e) {
      return std::string(e.what());
    }
  };
  std::ofstream(root + "/clients/broken.key") << "curve\n    public-key = \"short\"\n";
  EXPECT_NE(message().find("clients/broken.key: line 2: public-key is not a CURVE key"), std::string::npos)
      << message();
  fs::remove(root + "/clients/broken.key");
  fs::remove_all(root + "/admins");
  EXPECT_NE(message().find("admins: cannot read the key directory"), std::string::npos) << message();
}

TEST(NamePolicy, RulesAddUpAndUnnamedKeysGetNothing) {
  const auto p = name_policy::parse(
      "# comment\n"
      "worker pool   squares counter   # trailing comment\n"
      "worker pool   echo\n"
      "worker *      public.*\n"
      "client shop   payments\n"
      "client ops    *\n",
      "policy");
  EXPECT_EQ(p.rules(), 5u);
  EXPECT_TRUE(p.may_register("pool", "squares"));
  EXPECT_TRUE(p.may_register("pool", "echo"));
  EXPECT_TRUE(p.may_register("other", "public.things")) << "`*` key with a prefix";
  EXPECT_FALSE(p.may_register("pool", "payments"));
  EXPECT_FALSE(p.may_register("shop", "payments")) << "client rules do not let a key register";
  EXPECT_TRUE(p.may_call("shop", "payments"));
  EXPECT_FALSE(p.may_call("shop", "squares"));
  EXPECT_TRUE(p.may_call("ops", "anything"));
  EXPECT_FALSE(p.may_call("nobody", "squares"));
}

TEST(NamePolicy, BadRulesAreErrorsWithTheLine) {
  auto message = [](const std::string& text) {
    try {
      name_policy::parse(text, "policy.txt");
      return std::string();
    } catch (const policy_error& e) {
      return std::string(e.what());
    }
  };
  EXPECT_EQ(message("\n\nadmin x y\n"),
            "policy.txt: line 3: a rule starts with `worker` or `client`, not 'admin'");
  EXPECT_NE(message("worker pool\n").find("line 1: expected `worker KEY NAME...`"), std::string::npos);
  EXPECT_NE(message("client a/b squares\n").find("is not a key name"), std::string::npos);
  EXPECT_NE(message("client shop $broker\n").find("'$broker' is not an actor name"), std::string::npos);
  EXPECT_NE(message("client shop bad*name*\n").find("is not an actor name prefix"), std::string::npos);
  EXPECT_THROW(name_policy::read("/nonexistent/policy"), policy_error);
}

TEST(Listening, PlaintextStaysOnThisHost) {
  for (const auto* ep : {"tcp://127.0.0.1:5555", "tcp://127.1.2.3:*", "tcp://localhost:5555",
                         "tcp://[::1]:5555", "ipc:///tmp/x.sock", "ipc://@abstract", "inproc://x"})
    EXPECT_TRUE(local_only_endpoint(ep)) << ep;
  for (const auto* ep : {"tcp://0.0.0.0:5555", "tcp://*:5555", "tcp://10.0.0.1:5555", "tcp://eth0:5555",
                         "tcp://example.com:5555", "tcp://[::]:5555", "ws://127.0.0.1:5555",
                         "tcp://127.0.0.1:1;10.0.0.1:2", "pgm://eth0;239.192.1.1:5555"})
    EXPECT_FALSE(local_only_endpoint(ep)) << ep;
}

TEST(Listening, AnIpcSocketFileIsOwnerOnly) {
  std::string tmpl = (fs::temp_directory_path() / "troupe-ipc-XXXXXX").string();
  const std::string dir = ::mkdtemp(tmpl.data());
  const auto old = ::umask(0);  // the most permissive umask: the file must still be 0600
  {
    zmq::context_t ctx(1);
    zmq::socket_t s(ctx, zmq::socket_type::router);
    s.set(zmq::sockopt::linger, 0);
    bind_owner_only(s, "ipc://" + dir + "/b.sock");
    struct stat st {};
    ASSERT_EQ(::stat((dir + "/b.sock").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
  }
  ::umask(old);
  EXPECT_EQ(::umask(old), old) << "the process umask is restored";
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace troupe
