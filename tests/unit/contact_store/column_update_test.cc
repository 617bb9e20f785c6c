#include "services/contact_store/column_update.h"

#include <deque>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include "services/contact_store/stored_values.h"

namespace contacts::store {
namespace {

using contacts::internal::StoredContact;

constexpr uint32_t kEmail = 1;
constexpr uint32_t kMobile = 2;
constexpr uint32_t kCity = 3;
constexpr int kCities = 5;
constexpr int kSharedEmails = 4;
constexpr uint64_t kLists[] = {10, 11};

TenantColumns NewColumns() {
  TenantColumns columns;
  columns.set_layout({kEmail, kMobile});
  columns.AddAttributeColumn(kCity, AttributeType::kText);
  return columns;
}

// Every observable part of the columns for the contacts `pks` could name, as one string, so that
// two states compare with one EXPECT_EQ.
std::string Fingerprint(const TenantColumns& columns, int pks) {
  std::string out = fmt::format("alive {} email {} mobile {}", columns.alive().toString(),
                                columns.has_email().toString(), columns.has_mobile().toString());
  for (uint64_t list : kLists) out += fmt::format(" list{} {}", list, columns.list(list).toString());
  out += fmt::format(" blacklisted {}", columns.blacklisted(contacts::v1::EMAIL_CHANNEL).toString());
  const AttributeColumn& city = *columns.attribute_column(kCity);
  out += fmt::format(" city {}", city.present().toString());
  for (int c = 0; c < kCities; ++c) {
    contacts::v1::AttributePredicate p;
    p.set_attribute("city");
    p.set_op(contacts::v1::EQ);
    p.add_values(fmt::format("city{}", c));
    auto predicate = TypedPredicate::Create(p, AttributeType::kText, {});
    EXPECT_TRUE(predicate.ok());
    out += fmt::format(" ={} {}", c, city.Evaluate(*predicate, columns.alive()).toString());
  }
  for (int shared = 0; shared < kSharedEmails; ++shared) {
    std::vector<uint32_t> holders = columns.LookupValueOrdinals(kEmail, fmt::format("shared{}@example.com", shared));
    out += fmt::format(" shared{} [{}]", shared, fmt::join(holders, ","));
  }
  for (int i = 0; i < pks; ++i) {
    const std::string pk = fmt::format("pk{}", i);
    out += fmt::format(" {}:{}{}{}", pk, columns.MayHavePrimaryKey(pk) ? 'P' : '-',
                       columns.MayHaveLookupValue(kEmail, pk + "@example.com") ? 'E' : '-',
                       columns.MayHaveLookupValue(kEmail, pk + "@example.org") ? 'e' : '-');
  }
  return out;
}

// A batch of random changes over contacts pk0..pk{pks-1}: creates, updates of email, city, lists
// and blacklist, deletes, and a contact moving to a new ordinal; each contact changes at most once,
// as in one commit. `live` holds the stored records and is updated to the state after the batch.
class ChangeGenerator {
 public:
  explicit ChangeGenerator(uint32_t seed) : rng_(seed) {}

  std::vector<ContactChange> Batch(int pks, std::vector<std::optional<StoredContact>>* live) {
    live->resize(pks);
    std::vector<ContactChange> changes;
    for (int i = 0; i < pks; ++i) {
      std::optional<StoredContact>& slot = (*live)[i];
      const int what = static_cast<int>(rng_() % 6);
      if (what == 0) continue;  // untouched
      const StoredContact* before = slot ? Keep(*slot) : nullptr;
      if (slot && what == 1) {
        slot.reset();
        changes.emplace_back(before, nullptr);
        continue;
      }
      StoredContact next = slot ? *slot : StoredContact();
      if (!slot || what == 2) next.set_ordinal(next_ordinal_++);  // new, or moved to a new ordinal
      next.set_primary_key(fmt::format("pk{}", i));
      // Mostly the contact's own email; sometimes one of a few shared ones (a tenant allowing
      // duplicates), which pass between contacts within a batch.
      if (rng_() % 5 == 0) {
        SetStoredValue(&next, kEmail, fmt::format("shared{}@example.com", rng_() % kSharedEmails));
      } else {
        SetStoredValue(&next, kEmail, fmt::format("pk{}@example.{}", i, rng_() % 2 ? "com" : "org"));
      }
      if (rng_() % 3) {
        SetStoredValue(&next, kMobile, fmt::format("+9199{:08}", i));
      } else {
        SetStoredValue(&next, kMobile, "");
      }
      SetStoredValue(&next, kCity, fmt::format("city{}", rng_() % kCities));
      next.clear_list_ids();
      for (uint64_t list : kLists) {
        if (rng_() % 2) next.add_list_ids(list);
      }
      next.clear_blacklist();
      if (rng_() % 4 == 0) next.add_blacklist()->set_channel(contacts::v1::EMAIL_CHANNEL);
      next.set_created_at_micros(static_cast<int64_t>(rng_() % 1000));
      next.set_modified_at_micros(static_cast<int64_t>(rng_() % 1000));
      slot = next;
      changes.emplace_back(before, Keep(next));
    }
    return changes;
  }

 private:
  // Records must outlive the ColumnUpdate (and, for `before`, the next batch): a deque keeps
  // their addresses.
  const StoredContact* Keep(const StoredContact& contact) { return &kept_.emplace_back(contact); }

  std::mt19937 rng_;
  uint32_t next_ordinal_ = 0;
  std::deque<StoredContact> kept_;
};

TEST(ColumnUpdateTest, HelperThreadAndInlineGiveTheStateOfApplyingInOrder) {
  constexpr int kPks = 600;
  for (uint32_t seed = 1; seed <= 5; ++seed) {
    ChangeGenerator generator(seed);
    std::vector<std::optional<StoredContact>> live;
    TenantColumns reference = NewColumns(), threaded = NewColumns(), inline_columns = NewColumns();
    for (int round = 0; round < 3; ++round) {
      std::vector<ContactChange> changes = generator.Batch(kPks, &live);
      for (const auto& [before, after] : changes) {
        if (before && after && before->ordinal() != after->ordinal()) {
          reference.Apply(before, nullptr);
          reference.Apply(nullptr, after);
        } else {
          reference.Apply(before, after);
        }
      }
      {
        ColumnUpdate update(&threaded, changes, /*parallel_min_changes=*/1);
        EXPECT_TRUE(update.ran_on_helper_thread());
        update.Finish();
      }
      {
        ColumnUpdate update(&inline_columns, changes, /*parallel_min_changes=*/changes.size() + 1);
        EXPECT_FALSE(update.ran_on_helper_thread());
      }  // the destructor finishes
      const std::string expected = Fingerprint(reference, kPks);
      EXPECT_EQ(Fingerprint(threaded, kPks), expected) << "seed " << seed << " round " << round;
      EXPECT_EQ(Fingerprint(inline_columns, kPks), expected) << "seed " << seed << " round " << round;
    }
  }
}

TEST(ColumnUpdateTest, RevertLeavesTheColumnsAsBefore) {
  constexpr int kPks = 600;
  for (uint32_t seed = 1; seed <= 5; ++seed) {
    for (size_t parallel_min : {size_t{1}, size_t{100000}}) {
      ChangeGenerator generator(seed);
      std::vector<std::optional<StoredContact>> live;
      TenantColumns columns = NewColumns();
      ColumnUpdate(&columns, generator.Batch(kPks, &live)).Finish();  // something stored first
      const std::string before = Fingerprint(columns, kPks);
      std::vector<ContactChange> changes = generator.Batch(kPks, &live);
      ASSERT_GT(changes.size(), 100u);
      ColumnUpdate update(&columns, changes, parallel_min);
      update.Revert();
      EXPECT_EQ(Fingerprint(columns, kPks), before) << "seed " << seed;
      update.Revert();  // a second call changes nothing
      EXPECT_EQ(Fingerprint(columns, kPks), before) << "seed " << seed;
    }
  }
}

TEST(ColumnUpdateTest, SmallCommitsStayOnTheCallingThread) {
  TenantColumns columns = NewColumns();
  StoredContact contact;
  contact.set_primary_key("pk0");
  contact.set_ordinal(0);
  ColumnUpdate update(&columns, {{nullptr, &contact}});
  EXPECT_FALSE(update.ran_on_helper_thread());
  EXPECT_TRUE(columns.alive().contains(0));  // applied before the constructor returned
}

}  // namespace
}  // namespace contacts::store
