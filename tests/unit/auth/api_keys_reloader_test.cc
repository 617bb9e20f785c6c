#include "common/auth/api_keys_reloader.h"

#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <prometheus/registry.h>

#include "gtest/gtest.h"

namespace contacts {
namespace {

constexpr char kOldKeys[] = "k-old acme writer\n";
constexpr char kNewKeys[] = "k-new acme writer\nk-second acme reader\n";

class ApiKeysReloaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmp = (std::filesystem::temp_directory_path() / "api_keys_reloader_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmp.data()), nullptr);
    dir_ = tmp;
    path_ = dir_ + "/api_keys";
    Write(kOldKeys);
    absl::StatusOr<Authenticator> loaded = Authenticator::FromFile(path_);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    auth_ = *std::move(loaded);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Written in place (not renamed over), as an editor saving in place or `cat > file` does.
  void Write(const std::string& text) { std::ofstream(path_, std::ios::trunc) << text; }

  bool Accepts(const char* key) { return auth_.Authenticate(key, std::nullopt, Role::kReader).ok(); }

  double Metric(const std::string& name, const std::string& result = "") {
    for (const prometheus::MetricFamily& family : registry_.Collect()) {
      if (family.name != name) continue;
      for (const prometheus::ClientMetric& metric : family.metric) {
        if (!result.empty() && (metric.label.empty() || metric.label[0].value != result)) continue;
        return family.type == prometheus::MetricType::Counter ? metric.counter.value : metric.gauge.value;
      }
    }
    ADD_FAILURE() << "no metric " << name << " " << result;
    return -1;
  }

  static ApiKeysReloader::Options Timing() {
    return ApiKeysReloader::Options{.interval = absl::Seconds(10), .settle = absl::Seconds(1)};
  }

  std::string dir_;
  std::string path_;
  Authenticator auth_;
  prometheus::Registry registry_;
  const absl::Time t0_ = absl::FromUnixSeconds(1'000'000);
};

TEST_F(ApiKeysReloaderTest, NewContentIsAppliedOnceReadTheSameTwiceSettleApart) {
  ApiKeysReloader reloader(&auth_, path_, Timing(), &registry_);
  EXPECT_EQ(reloader.Check(t0_), t0_ + absl::Seconds(10)) << "unchanged file: next look after the interval";
  Write(kNewKeys);
  EXPECT_EQ(reloader.Check(t0_ + absl::Seconds(10)), t0_ + absl::Seconds(11)) << "new content: read again";
  EXPECT_TRUE(Accepts("k-old")) << "applied after one read";
  EXPECT_EQ(reloader.Check(t0_ + absl::Seconds(11)), t0_ + absl::Seconds(21));
  EXPECT_FALSE(Accepts("k-old")) << "a key removed from the file is revoked";
  EXPECT_TRUE(Accepts("k-new"));
  EXPECT_TRUE(Accepts("k-second"));
  EXPECT_EQ(auth_.key_count(), 2u);
  EXPECT_EQ(Metric("api_keys_reloads_total", "applied"), 1);
  EXPECT_EQ(Metric("api_keys_loaded"), 2);
  EXPECT_EQ(Metric("api_keys_file_in_use"), 1);
}

TEST_F(ApiKeysReloaderTest, FileStillBeingWrittenIsNotApplied) {
  ApiKeysReloader reloader(&auth_, path_, Timing(), &registry_);
  // Half of the new file: it parses (one whole line), and would revoke every other key.
  Write("k-new acme writer\n");
  reloader.Check(t0_);
  Write(kNewKeys);
  reloader.Check(t0_ + absl::Seconds(1));
  EXPECT_TRUE(Accepts("k-old")) << "the content changed between the reads: nothing applied yet";
  EXPECT_EQ(reloader.Check(t0_ + absl::Seconds(1) + absl::Milliseconds(500)), t0_ + absl::Seconds(2))
      << "read again only once the content has been the same for `settle`";
  EXPECT_TRUE(Accepts("k-old"));
  reloader.Check(t0_ + absl::Seconds(2));
  EXPECT_TRUE(Accepts("k-second")) << "the whole file, never the half";
  EXPECT_FALSE(Accepts("k-old"));
}

TEST_F(ApiKeysReloaderTest, MalformedFileLeavesTheKeysInUseUntilFixed) {
  ApiKeysReloader reloader(&auth_, path_, Timing(), &registry_);
  Write("k-new acme writer\nk-bad acme superuser\n");
  reloader.Check(t0_);
  reloader.Check(t0_ + absl::Seconds(1));
  EXPECT_TRUE(Accepts("k-old")) << "a refused file changes nothing";
  EXPECT_FALSE(Accepts("k-new")) << "not even its good lines";
  EXPECT_EQ(Metric("api_keys_reloads_total", "rejected"), 1);
  EXPECT_EQ(Metric("api_keys_file_in_use"), 0);
  reloader.Check(t0_ + absl::Seconds(11));
  reloader.Check(t0_ + absl::Seconds(21));
  EXPECT_EQ(Metric("api_keys_reloads_total", "rejected"), 1) << "the same refused content counts once";
  Write(kNewKeys);
  reloader.Check(t0_ + absl::Seconds(31));
  reloader.Check(t0_ + absl::Seconds(32));
  EXPECT_TRUE(Accepts("k-new"));
  EXPECT_FALSE(Accepts("k-old"));
  EXPECT_EQ(Metric("api_keys_file_in_use"), 1);
  EXPECT_EQ(Metric("api_keys_reloads_total", "applied"), 1);
}

TEST_F(ApiKeysReloaderTest, UnreadableFileLeavesTheKeysInUse) {
  ApiKeysReloader reloader(&auth_, path_, Timing(), &registry_);
  std::filesystem::remove(path_);
  EXPECT_EQ(reloader.Check(t0_), t0_ + absl::Seconds(10));
  EXPECT_TRUE(Accepts("k-old")) << "a missing file revokes nothing";
  EXPECT_EQ(Metric("api_keys_reloads_total", "unreadable"), 1);
  EXPECT_EQ(Metric("api_keys_file_in_use"), 0);
  Write(kOldKeys);  // back as it was
  reloader.Check(t0_ + absl::Seconds(10));
  EXPECT_EQ(Metric("api_keys_file_in_use"), 1);
  EXPECT_TRUE(Accepts("k-old"));
  EXPECT_EQ(Metric("api_keys_reloads_total", "applied"), 0) << "the same content is not applied again";
}

TEST_F(ApiKeysReloaderTest, FileReplacedByRenameIsFollowed) {
  // The kubelet updates a mounted Secret by pointing a symlink at a new folder: the path is
  // opened again at every look, never kept open.
  ApiKeysReloader reloader(&auth_, path_, Timing(), &registry_);
  std::ofstream(dir_ + "/api_keys.new") << kNewKeys;
  std::filesystem::rename(dir_ + "/api_keys.new", path_);
  reloader.Check(t0_);
  reloader.Check(t0_ + absl::Seconds(1));
  EXPECT_TRUE(Accepts("k-new"));
}

TEST_F(ApiKeysReloaderTest, ThreadAppliesChangesAndStopsWithTheReloader) {
  auto reloader = std::make_unique<ApiKeysReloader>(
      &auth_, path_, ApiKeysReloader::Options{.interval = absl::Milliseconds(20), .settle = absl::Milliseconds(5)},
      nullptr);
  reloader->Start();
  Write(kNewKeys);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!Accepts("k-new") && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(Accepts("k-new"));
  const auto before = std::chrono::steady_clock::now();
  reloader.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(1)) << "the destructor wakes the thread";
}

TEST(AuthenticatorReplaceKeysTest, AuthOffCannotBeTurnedOnAtRunTime) {
  Authenticator auth = Authenticator::Disabled();
  EXPECT_EQ(auth.ReplaceKeys(kNewKeys, "api_keys").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(auth.enabled());
  EXPECT_TRUE(auth.Authenticate(std::nullopt, std::nullopt, Role::kAdmin).ok());
}

TEST(AuthenticatorReplaceKeysTest, RefusedTextKeepsTheKeysAndNamesTheLine) {
  absl::StatusOr<Authenticator> auth = Authenticator::FromText(kOldKeys);
  ASSERT_TRUE(auth.ok());
  absl::Status replaced = auth->ReplaceKeys("k-new acme writer\nbroken\n", "/etc/keys");
  EXPECT_EQ(replaced.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(replaced.message().find("/etc/keys line 2"), absl::string_view::npos) << replaced;
  EXPECT_TRUE(auth->Authenticate("k-old", std::nullopt, Role::kWriter).ok());
  EXPECT_FALSE(auth->Authenticate("k-new", std::nullopt, Role::kWriter).ok());
}

}  // namespace
}  // namespace contacts
