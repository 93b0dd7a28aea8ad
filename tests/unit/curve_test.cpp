// CURVE key files: the certificate format of czmq and pyzmq, what troupe
// keygen writes, and that a bad file is a clear error, never a crash.
#include "troupe/curve.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

namespace troupe::curve {
namespace {

namespace fs = std::filesystem;

// A key pair made once by pyzmq (zmq.curve_keypair), so the tests do not
// depend on the generator.
constexpr const char* pub = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
constexpr const char* sec = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6";

// What czmq's zcert_save_public writes.
std::string czmq_public() {
  return std::string(
             "#   ****  Generated on 2024-01-02 03:04:05 by CZMQ  ****\n"
             "#   ZeroMQ CURVE Public Certificate\n"
             "#   Exchange securely, or use a secure mechanism to verify the contents\n"
             "#   of this file after exchange. Store public certificates in your home\n"
             "#   directory, in the .curve subdirectory.\n"
             "\n"
             "metadata\n"
             "    name = \"alice\"\n"
             "    email = \"alice@example.com\"\n"
             "curve\n"
             "    public-key = \"") +
         pub + "\"\n";
}

// What pyzmq's zmq.auth.create_certificates writes for the secret file:
// metadata values bare.
std::string pyzmq_secret() {
  return std::string(
             "#   ****  Generated on 2024-01-02 03:04:05.123456 by pyzmq  ****\n"
             "#   ZeroMQ CURVE **Secret** Certificate\n"
             "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n"
             "\n"
             "metadata\n"
             "    name = alice smith\n"
             "curve\n"
             "    public-key = \"") +
         pub + "\"\n    secret-key = \"" + sec + "\"\n";
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "troupe-curve-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name, const std::string& content) const {
    const auto p = path_ + "/" + name;
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The error message of parsing `text`, or "" when it parses.
std::string error_of(const std::string& text, bool need_secret = false) {
  try {
    parse_certificate(text, "f.key", need_secret);
    return "";
  } catch (const key_error& e) {
    return e.what();
  }
}

TEST(CurveCertificate, ReadsWhatCzmqAndPyzmqWrite) {
  const auto a = parse_certificate(czmq_public(), "alice.key", false);
  EXPECT_EQ(a.public_key, pub);
  EXPECT_EQ(a.secret_key, "");
  ASSERT_EQ(a.metadata.size(), 2u);
  EXPECT_EQ(a.metadata[0], (std::pair<std::string, std::string>{"name", "alice"}));

  const auto b = parse_certificate(pyzmq_secret(), "alice.key_secret", true);
  EXPECT_EQ(b.public_key, pub);
  EXPECT_EQ(b.secret_key, sec);
  EXPECT_EQ(b.metadata.at(0).second, "alice smith");
}

TEST(CurveCertificate, WhatItWritesReadsBack) {
  certificate c{pub, sec, {{"name", "bob"}}};
  const auto back = parse_certificate(format_certificate(c, true), "x", true);
  EXPECT_EQ(back.public_key, pub);
  EXPECT_EQ(back.secret_key, sec);
  EXPECT_EQ(back.metadata, c.metadata);
  const auto public_only = format_certificate(c, false);
  EXPECT_EQ(public_only.find(sec), std::string::npos) << "the public file must not hold the secret";
  EXPECT_EQ(parse_certificate(public_only, "x", false).public_key, pub);
}

TEST(CurveCertificate, AcceptsSingleQuotesBareKeysCommentsAndCrlf) {
  const std::string text = std::string("curve\r\n    public-key = '") + pub + "'   # a comment\r\n";
  EXPECT_EQ(parse_certificate(text, "x", false).public_key, pub);
  // A bare Z85 key may contain '#': it is not a comment there.
  const std::string bare = std::string("curve\n    public-key = ") + pub + "\n";
  EXPECT_EQ(parse_certificate(bare, "x", false).public_key, pub);
}

TEST(CurveCertificate, BadFilesAreClearErrors) {
  const std::string curve_line = "curve\n    public-key = \"";
  EXPECT_NE(error_of("").find("no public-key in a `curve` section"), std::string::npos);
  EXPECT_NE(error_of("hello world\n").find("no public-key"), std::string::npos);
  EXPECT_NE(error_of(curve_line + "tooshort\"\n").find("line 2: public-key is not a CURVE key"),
            std::string::npos);
  EXPECT_NE(error_of(curve_line + std::string(pub).substr(0, 39) + "~\"\n").find("outside Z85"),
            std::string::npos);
  EXPECT_NE(error_of(curve_line + pub + "\n").find("unterminated quoted value"), std::string::npos);
  EXPECT_NE(error_of(curve_line + pub + "\" trailing\n").find("unexpected text"), std::string::npos);
  EXPECT_NE(error_of(curve_line + pub + "\"\n    public-key = \"" + pub + "\"\n").find("given twice"),
            std::string::npos);
  EXPECT_NE(error_of(czmq_public(), true).find("give the NAME.key_secret file"), std::string::npos);
  EXPECT_NE(error_of(std::string("a\0b", 3)).find("binary data"), std::string::npos);
  EXPECT_NE(error_of("curve\n    what is this\n").find("expected `name = value`"), std::string::npos);
  // A secret key that is not the public key's.
  const std::string other_secret = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs";
  const auto mismatch = error_of(curve_line + pub + "\"\n    secret-key = \"" + other_secret + "\"\n", true);
  EXPECT_NE(mismatch.find("secret-key does not belong to public-key"), std::string::npos) << mismatch;
  EXPECT_EQ(error_of(curve_line + "short\"\n").rfind("f.key: ", 0), 0u) << "names the file";
}

TEST(CurveCertificate, FilesThatCannotBeReadSayWhy) {
  TempDir dir;
  auto message = [](const std::string& path) {
    try {
      read_certificate(path, false);
      return std::string();
    } catch (const key_error& e) {
      return std::string(e.what());
    }
  };
  EXPECT_NE(message(dir.path() + "/missing.key").find("cannot read: No such file or directory"),
            std::string::npos);
  EXPECT_NE(message(dir.path()).find("not a regular file"), std::string::npos);
  EXPECT_NE(message(dir.file("big.key", std::string(70 * 1024, '#'))).find("larger than 64 KiB"),
            std::string::npos);
  EXPECT_EQ(read_certificate(dir.file("ok.key", czmq_public()), false).public_key, pub);
}

TEST(CurveCertificate, GarbageNeverCrashesTheReader) {
  std::mt19937 rng(7);
  const std::string pieces[] = {"curve\n",
                                "metadata\n",
                                "    ",
                                "public-key",
                                "secret-key",
                                " = ",
                                "\"",
                                "'",
                                "#",
                                "\n",
                                pub,
                                sec,
                                "\r",
                                "x",
                                "\t",
                                "=",
                                std::string(1, '\0')};
  for (int i = 0; i < 5000; ++i) {
    std::string text;
    const int n = static_cast<int>(rng() % 12);
    for (int j = 0; j < n; ++j) text += pieces[rng() % std::size(pieces)];
    try {
      const auto c = parse_certificate(text, "fuzz", rng() % 2 == 0);
      EXPECT_TRUE(valid_z85_key(c.public_key));
    } catch (const key_error&) {
    }
  }
}

TEST(CurveKeygen, WritesAPairThatLoadsWithTheRightModes) {
  if (!available()) GTEST_SKIP() << "ZeroMQ without CURVE";
  TempDir dir;
  const auto out = dir.path() + "/keys";
  const auto [public_path, secret_path] = write_key_pair(out, "squares-pool");
  EXPECT_EQ(public_path, out + "/squares-pool.key");
  EXPECT_EQ(secret_path, out + "/squares-pool.key_secret");
  struct stat st {};
  ASSERT_EQ(::stat(secret_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(public_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  ASSERT_EQ(::stat(out.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u) << "a new key directory is owner-only";
  const auto secret = read_certificate(secret_path, true);
  EXPECT_EQ(read_certificate(public_path, false).public_key, secret.public_key);
  EXPECT_EQ(secret.metadata.at(0), (std::pair<std::string, std::string>{"name", "squares-pool"}));

  EXPECT_THROW(write_key_pair(out, "squares-pool"), key_error) << "never overwrites";
  EXPECT_THROW(write_key_pair(out, "../evil"), key_error);
  EXPECT_THROW(write_key_pair(out, ".hidden"), key_error);
  EXPECT_THROW(write_key_pair(out, ""), key_error);
  EXPECT_NE(generate().public_key, generate().public_key);
}

TEST(CurveKeys, BothFilesAreNeededAndTheErrorNamesTheOption) {
  TempDir dir;
  auto message = [](const client_keys& k) {
    try {
      load(k);
      return std::string();
    } catch (const key_error& e) {
      return std::string(e.what());
    }
  };
  const auto secret = dir.file("me.key_secret", pyzmq_secret());
  const auto broker = dir.file("broker.key", czmq_public());
  EXPECT_NE(message({secret, ""}).find("--broker-key is not"), std::string::npos);
  EXPECT_NE(message({"", broker}).find("--curve-secret is not"), std::string::npos);
  EXPECT_NE(message({broker, broker}).find("--curve-secret " + broker + ": no secret-key"),
            std::string::npos);
  EXPECT_NE(message({secret, dir.path() + "/nope.key"}).find("--broker-key "), std::string::npos);
  const auto c = load({secret, broker});
  EXPECT_EQ(c.public_key, pub);
  EXPECT_EQ(c.secret_key, sec);
  EXPECT_EQ(c.server_key, pub);
}

TEST(CurveKeys, KeyNames) {
  EXPECT_TRUE(valid_key_name("squares-pool.2_a"));
  EXPECT_FALSE(valid_key_name(""));
  EXPECT_FALSE(valid_key_name(".x"));
  EXPECT_FALSE(valid_key_name("a/b"));
  EXPECT_FALSE(valid_key_name("a b"));
  EXPECT_FALSE(valid_key_name(std::string(65, 'a')));
}

TEST(CurveHandshake, EventsBecomeClearReasons) {
  handshake_state s("tcp://127.0.0.1:5555", true);
  EXPECT_EQ(s.why_unreachable(), "no broker answering at tcp://127.0.0.1:5555");
  s.on_event(ZMQ_EVENT_HANDSHAKE_FAILED_AUTH, 400);
  EXPECT_TRUE(s.gave_up());
  EXPECT_EQ(
      s.why_unreachable().rfind("authentication failed: the broker at tcp://127.0.0.1:5555 does not accept "
                                "this key (ZAP status 400)",
                                0),
      0u)
      << s.why_unreachable();
  s.on_event(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, 0);
  EXPECT_TRUE(s.connected());
  EXPECT_FALSE(s.failing());
  s.on_event(ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL, 32);
  EXPECT_NE(s.why_unreachable().find("is the broker key (--broker-key) the broker's public key?"),
            std::string::npos);
  EXPECT_FALSE(s.gave_up()) << "ZeroMQ retries after a closed connection";

  handshake_state plain("ipc:///x", false);
  plain.on_event(ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL, ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH);
  EXPECT_NE(plain.why_unreachable().find("requires CURVE: give --curve-secret and --broker-key"),
            std::string::npos);
}

}  // namespace
}  // namespace troupe::curve
