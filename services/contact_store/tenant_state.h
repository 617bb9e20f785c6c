// One tenant's in-memory state: its catalog (settings, attributes, lists, segments, control
// groups, mirrored from the catalog column family) and its query columns. Guarded by `mu`: writers
// of the tenant hold it exclusively for the whole RocksDB write and column update, so readers
// (shared) always see columns and records that agree.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>

#include "contacts/internal/storage.pb.h"
#include "contacts/v1/types.pb.h"

#include "absl/container/flat_hash_map.h"
#include "common/values/attribute_type.h"
#include "common/values/typed_value.h"
#include "services/contact_store/query_columns.h"

namespace contacts::store {

struct ControlGroupState {
  contacts::v1::ControlGroup definition;
  uint64_t seed = 0;
  uint32_t basis_points = 0;  // percent * 100
};

// A tenant's attributes, by id and by name: held by the tenant's state and by the copies of its
// catalog that batches resolve against (CatalogSnapshot).
struct AttributeCatalog {
  std::map<uint32_t, contacts::v1::Attribute> attributes;        // by id
  absl::flat_hash_map<std::string, uint32_t> attribute_by_name;  // lower-case name -> id

  const contacts::v1::Attribute* FindAttribute(std::string_view name) const;
  const contacts::v1::Attribute* AttributeById(uint32_t id) const {
    auto it = attributes.find(id);
    return it == attributes.end() ? nullptr : &it->second;
  }
};

// The part of a tenant's catalog that resolving written values needs, as an immutable copy. A batch
// resolves its rows against it before it takes the tenant's lock, while the batch before it still
// holds the lock (resolving was a sixth of a batch's time under it), then checks under the lock
// that the catalog did not change meanwhile.
struct CatalogSnapshot : AttributeCatalog {
  uint32_t primary_key_attribute_id = 0;
  uint32_t email_attribute_id = 0;  // system attributes: fixed for the tenant's life
  uint32_t mobile_attribute_id = 0;
  bool configured = false;
  ValueOptions value_options;

  const contacts::v1::Attribute* primary_key_attribute() const { return AttributeById(primary_key_attribute_id); }
};

struct TenantState : AttributeCatalog {
  mutable std::shared_mutex mu;
  contacts::internal::TenantRecord record;
  std::map<uint64_t, contacts::v1::ContactList> lists;      // by id
  absl::flat_hash_map<std::string, uint64_t> list_by_name;  // lower-case name -> id
  std::map<std::string, contacts::v1::Segment> segments;    // lower-case name
  std::map<std::string, ControlGroupState> control_groups;  // lower-case name
  TenantColumns columns;

  uint32_t id() const { return record.tenant_id(); }
  ValueOptions value_options() const {
    ValueOptions options;
    if (!record.default_country_code().empty()) options.default_country_code = record.default_country_code();
    return options;
  }
  const contacts::v1::Attribute* primary_key_attribute() const {
    return AttributeById(record.primary_key_attribute_id());
  }
  std::optional<uint64_t> FindList(std::string_view name) const;
  uint32_t email_id() const;
  uint32_t mobile_id() const;

  // The catalog as last published; safe to call without `mu`.
  std::shared_ptr<const CatalogSnapshot> catalog() const {
    std::lock_guard lock(catalog_mu);
    return catalog_snapshot;
  }
  // Publishes a copy of the catalog as it is now. Every change to `attributes`, `attribute_by_name`
  // or the record's primary key, default country code or configured flag calls it before it
  // releases `mu`. REQUIRES: `mu` held exclusively.
  void PublishCatalog();

  mutable std::mutex catalog_mu;  // guards catalog_snapshot (the pointer, not the snapshot)
  std::shared_ptr<const CatalogSnapshot> catalog_snapshot = std::make_shared<CatalogSnapshot>();
};

inline AttributeType TypeOf(const contacts::v1::Attribute& attribute) {
  return static_cast<AttributeType>(attribute.type());
}

}  // namespace contacts::store
