// ContactRepository: contact-store's domain logic, free of gRPC types. Owns the RocksDB (StoreDb)
// and every tenant's in-memory state (TenantState): the catalog, contacts with their lists and
// blacklist, anonymous users, idempotent import batches, and the query engine (FilterEvaluator over
// TenantColumns).
//
// Consistency: a contact write and its ordinal change go in one WriteBatch, written while the
// tenant's lock is held exclusively and followed by the column update (the columns are also the
// email and mobile lookups and the lists' members), so concurrent writers to the same key
// serialise and readers see records and columns that agree. Tenants never share keys: every key
// starts with the tenant id.
#pragma once

#include <atomic>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "contacts/internal/storage.pb.h"
#include "contacts/v1/contact_store.pb.h"

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/contact_store/deferred_release.h"
#include "services/contact_store/export_writer.h"
#include "services/contact_store/filter_evaluator.h"
#include "services/contact_store/store_db.h"
#include "services/contact_store/tenant_state.h"

namespace contacts::store {

// Limits on request sizes (RESOURCE_EXHAUSTED / INVALID_ARGUMENT beyond them).
inline constexpr int kMaxBatchRows = 50000;
inline constexpr int kMaxAttributesPerTenant = 500;
// Columns of a positional batch: each names an attribute, a few perhaps twice (two spellings).
inline constexpr int kMaxBatchColumns = 2 * kMaxAttributesPerTenant;
inline constexpr int kMaxPageSize = 1000;
// How long a batch waits for the batch it must follow (BatchUpsertRequest.after_batch_sequence).
inline constexpr absl::Duration kBatchOrderWait = absl::Seconds(2);

enum class ContactWriteKind { kAdd, kUpsert, kUpdate };

struct ContactRepositoryOptions {
  // Threads that read and render one large export at once (ExportPlan::scan_threads). Default: 2.
  int export_threads = 2;
};

class ContactRepository {
 public:
  // Opens <data_dir>/db and loads every tenant's catalog and columns.
  static absl::StatusOr<std::unique_ptr<ContactRepository>> Open(const std::string& data_dir,
                                                                 const StoreDbOptions& options,
                                                                 ContactRepositoryOptions repository_options = {});

  // ----- Tenant -----
  // Errors: FAILED_PRECONDITION when the primary key changes after contacts exist;
  // INVALID_ARGUMENT for a bad attribute name, type or country code.
  absl::StatusOr<contacts::v1::Tenant> SetupTenant(const std::string& tenant,
                                                   const contacts::v1::SetupTenantRequest& request);
  absl::StatusOr<contacts::v1::Tenant> GetTenant(const std::string& tenant);

  // ----- Attributes -----
  absl::StatusOr<contacts::v1::Attribute> CreateAttribute(const std::string& tenant,
                                                          const contacts::v1::CreateAttributeRequest& request);
  absl::StatusOr<std::vector<contacts::v1::Attribute>> ListAttributes(const std::string& tenant);
  absl::StatusOr<contacts::v1::Attribute> GetAttribute(const std::string& tenant, const std::string& name);
  absl::StatusOr<contacts::v1::Attribute> UpdateAttribute(const std::string& tenant,
                                                          const contacts::v1::UpdateAttributeRequest& request);
  // Errors: FAILED_PRECONDITION for the primary key or a system attribute.
  absl::Status DeleteAttribute(const std::string& tenant, const std::string& name);

  // ----- Contacts -----
  // Errors: INVALID_ARGUMENT naming the attribute and the problem (nothing is written);
  // ALREADY_EXISTS (kAdd) / NOT_FOUND (kUpdate); FAILED_PRECONDITION when the tenant is not set up.
  absl::StatusOr<contacts::v1::Contact> WriteContact(const std::string& tenant, ContactWriteKind kind,
                                                     const google::protobuf::Map<std::string, std::string>& attributes,
                                                     const std::vector<uint64_t>& list_ids, const std::string& source);
  absl::StatusOr<contacts::v1::Contact> GetContact(const std::string& tenant,
                                                   const contacts::v1::GetContactRequest& request);
  // GetContact without waiting: nullopt when a writer holds the tenant's lock (the caller then
  // retries where blocking is allowed). Same errors as GetContact.
  absl::StatusOr<std::optional<contacts::v1::Contact>> TryGetContact(const std::string& tenant,
                                                                     const contacts::v1::GetContactRequest& request);
  // Holds the tenant's lock as a writer does, for tests of the paths that must not wait for it.
  absl::StatusOr<std::unique_lock<std::shared_mutex>> LockTenantForTesting(const std::string& tenant);
  absl::Status DeleteContact(const std::string& tenant, const std::string& primary_key);

  // ----- Lists -----
  absl::StatusOr<contacts::v1::ContactList> CreateList(const std::string& tenant, const std::string& name);
  absl::StatusOr<std::vector<contacts::v1::ContactList>> ListLists(const std::string& tenant);
  absl::StatusOr<contacts::v1::ContactList> RenameList(const std::string& tenant, uint64_t id, const std::string& name);
  // Removes every membership; the contacts stay.
  absl::Status DeleteList(const std::string& tenant, uint64_t id);
  absl::StatusOr<contacts::v1::ListMembershipResponse> ChangeListMembership(
      const std::string& tenant, uint64_t list_id, const std::vector<std::string>& primary_keys, bool add);

  // ----- Blacklist -----
  absl::StatusOr<contacts::v1::Contact> SetBlacklist(const std::string& tenant, const std::string& primary_key,
                                                     contacts::v1::Channel channel,
                                                     contacts::v1::BlacklistReason reason, bool blacklisted);

  // ----- Anonymous users -----
  absl::StatusOr<contacts::v1::AnonymousUser> RecordAnonymous(const std::string& tenant,
                                                              const contacts::v1::RecordAnonymousRequest& request);
  absl::StatusOr<contacts::v1::ListAnonymousResponse> ListAnonymous(const std::string& tenant,
                                                                    const contacts::v1::ListAnonymousRequest& request);
  absl::StatusOr<contacts::v1::Contact> IdentifyAnonymous(const std::string& tenant,
                                                          const contacts::v1::IdentifyAnonymousRequest& request);

  // ----- Import batches (idempotent per job id and batch sequence) -----
  // A request with after_batch_sequence waits (up to kBatchOrderWait, or until `stop` says so)
  // for that batch of the job to be applied. Errors: ABORTED when it is still not applied,
  // CANCELLED when `stop` ended the wait.
  absl::StatusOr<contacts::v1::BatchUpsertResponse> BatchUpsert(const std::string& tenant,
                                                                const contacts::v1::BatchUpsertRequest& request,
                                                                const StopCheck& stop = {});
  absl::StatusOr<contacts::v1::BatchDeleteResponse> BatchDelete(const std::string& tenant,
                                                                const contacts::v1::BatchDeleteRequest& request);

  // ----- Queries -----
  // Both stop with CANCELLED once `stop` says the caller has gone (checked per term and every few
  // thousand records of a scan), so an abandoned call does not hold the tenant's lock on.
  absl::StatusOr<contacts::v1::StoreQueryResponse> Query(const std::string& tenant,
                                                         const contacts::v1::StoreQueryRequest& request,
                                                         const StopCheck& stop = {});
  absl::StatusOr<uint64_t> Count(const std::string& tenant, const contacts::v1::Filter& filter,
                                 const StopCheck& stop = {});
  // Whether `filter` resolves against the tenant's catalog (set up or not), as Count would resolve
  // it, without reading a contact: Count's INVALID_ARGUMENT errors, or OK.
  absl::Status CheckFilter(const std::string& tenant, const contacts::v1::Filter& filter);
  // Streams CSV chunks (header first) from one snapshot to `sink` (export_writer.h: it may take
  // each chunk's bytes; it returns false to stop when the client is gone). The columns are the
  // primary key, then request.attributes (every attribute when empty).
  // Errors: INVALID_ARGUMENT for an unknown attribute or a bad filter; CANCELLED when `stop` or
  // `sink` says so; DATA_LOSS for a corrupt record.
  absl::Status Export(const std::string& tenant, const contacts::v1::StoreExportRequest& request,
                      const ExportSink& sink, const StopCheck& stop);
  absl::StatusOr<std::vector<contacts::v1::Contact>> SearchByPrimaryKey(
      const std::string& tenant, const contacts::v1::SearchByPrimaryKeyRequest& request);

  // ----- Saved filters and holdouts -----
  absl::StatusOr<contacts::v1::Segment> PutSegment(const std::string& tenant, const contacts::v1::Segment& segment,
                                                   bool create_only);
  absl::StatusOr<contacts::v1::Segment> GetSegment(const std::string& tenant, const std::string& name);
  absl::StatusOr<std::vector<contacts::v1::Segment>> ListSegments(const std::string& tenant);
  absl::Status DeleteSegment(const std::string& tenant, const std::string& name);
  absl::StatusOr<contacts::v1::ControlGroup> CreateControlGroup(const std::string& tenant, const std::string& name,
                                                                double percent);
  absl::StatusOr<std::vector<contacts::v1::ControlGroup>> ListControlGroups(const std::string& tenant);
  absl::Status DeleteControlGroup(const std::string& tenant, const std::string& name);

  // ----- Operations -----
  // A consistent RocksDB checkpoint at `path` (must not exist), with the number of contacts it
  // holds (writes are held back while it is cut). Restore: start contact-store with --data_dir=D
  // after copying the checkpoint to D/db.
  absl::StatusOr<contacts::v1::BackupResponse> Backup(const std::string& path);
  // Contacts over all tenants, for metrics.
  uint64_t TotalContacts();
  StoreDb& db() { return *db_; }

  // Verifies that index entries and records agree for a tenant (tests and ops): every index and
  // membership entry has its record and value, every record has its entries, and each indexed
  // attribute's query column holds exactly the stored values.
  absl::Status CheckConsistency(const std::string& tenant);

 private:
  ContactRepository(std::unique_ptr<StoreDb> db, ContactRepositoryOptions options)
      : db_(std::move(db)), options_(options) {}

  struct RowResult;
  class BatchWriter;

  absl::Status LoadAll();
  // Deletes every entry of `family` with one range delete: stores written before the email and
  // mobile lookups (the index family) and the list members (the membership family) moved into the
  // query columns in session 9 still hold them, and nothing reads them any more. Returns whether
  // there was anything to drop.
  absl::StatusOr<bool> DropEntriesOf(rocksdb::ColumnFamilyHandle* family);
  absl::Status LoadTenant(TenantState* state);
  absl::Status RebuildColumns(TenantState* state);
  // A tenant's in-memory state with its system attributes, not registered anywhere.
  static std::unique_ptr<TenantState> NewTenantState(const std::string& name, uint32_t id);
  static absl::Status CheckTenantName(const std::string& name);
  // Finds or registers (and stores) the tenant: for calls that write.
  absl::StatusOr<TenantState*> Tenant(const std::string& name);
  // Every registered tenant (tenants are never removed, so the pointers stay valid).
  std::vector<TenantState*> AllTenants() ABSL_LOCKS_EXCLUDED(tenants_mu_);
  // Finds the tenant, or answers for one never written to with a blank, unregistered state (what
  // a new tenant holds), so that a read of a mistyped tenant name stores nothing. The blank is
  // shared and must never be written through: for calls that only read, or that refuse an
  // unconfigured tenant before they write.
  absl::StatusOr<TenantState*> TenantOrBlank(const std::string& name);
  absl::StatusOr<TenantState*> ConfiguredTenant(const std::string& name);
  // FAILED_PRECONDITION unless SetupTenant has run. REQUIRES: state.mu held.
  static absl::Status CheckConfigured(const TenantState& state, const std::string& name);
  // REQUIRES: state.mu held (shared or exclusive).
  absl::StatusOr<contacts::v1::Contact> GetContactLocked(const TenantState& state,
                                                         const contacts::v1::GetContactRequest& request);
  static std::string TenantRecordKey(const TenantState& state);
  absl::Status PersistTenantRecord(TenantState* state, rocksdb::WriteBatch* batch);
  // Waits until the import batch at `applied_key` is applied. Errors as BatchUpsert's wait.
  absl::Status WaitForAppliedBatch(const std::string& applied_key, const std::string& what, const StopCheck& stop);
  // Wakes the batches waiting for their predecessor. Call after a batch's applied record is written.
  void NotifyBatchApplied();

  absl::StatusOr<std::optional<contacts::internal::StoredContact>> ReadContact(
      const TenantState& state, const std::string& pk, const rocksdb::Snapshot* snapshot = nullptr);
  // Canonical primary key from a caller's text. Errors: INVALID_ARGUMENT.
  absl::StatusOr<std::string> CanonicalPrimaryKey(const TenantState& state, const std::string& raw) const;
  // The primary keys, sorted, of the live contacts whose email or mobile (`attribute_id`) may be
  // `canonical` (its hash matched in the query columns); their records settle it.
  absl::StatusOr<std::vector<std::string>> LookupCandidateKeys(const TenantState& state, uint32_t attribute_id,
                                                               std::string_view canonical);
  // The first `limit` stored contacts, by primary key, whose email or mobile (`attribute_id`) is
  // `canonical`: the query columns name the candidates by value hash, their records settle it.
  absl::StatusOr<std::vector<contacts::internal::StoredContact>> ContactsWithLookupValue(
      const TenantState& state, uint32_t attribute_id, std::string_view canonical,
      size_t limit = std::numeric_limits<size_t>::max());
  contacts::v1::Contact ToContact(const TenantState& state, const contacts::internal::StoredContact& stored,
                                  const std::vector<uint32_t>* projection = nullptr) const;
  // An evaluator over the tenant's columns whose record scans read this repository.
  FilterEvaluator Evaluator(const TenantState& state, const StopCheck& stop);
  absl::StatusOr<Roaring> EvaluateFilter(const TenantState& state, const contacts::v1::Filter& filter,
                                         const StopCheck& stop);
  absl::StatusOr<Roaring> ScanRecords(const TenantState& state, uint32_t attribute_id, const TypedPredicate& predicate,
                                      const StopCheck& stop);
  // FAILED_PRECONDITION naming the saved segments with a term for which `names` is true (`what`:
  // the list or attribute about to go or change name); OK when none has one.
  absl::Status RefuseIfSegmentsName(const TenantState& state, std::string_view what,
                                    const std::function<bool(const contacts::v1::Term&)>& names);
  // FAILED_PRECONDITION naming two contacts that hold the same value of email or mobile
  // (`attribute_id`), for the setting `field` that would make it unique; OK when none do.
  absl::Status CheckNoSharedValue(const TenantState& state, uint32_t attribute_id, std::string_view field);
  absl::StatusOr<std::vector<std::string>> PrimaryKeysOf(const TenantState& state,
                                                         const std::vector<uint32_t>& ordinals,
                                                         const rocksdb::Snapshot* snapshot);
  // Removes the contact's records and entries (in `batch`); the caller applies the columns.
  void DeleteStoredContact(const TenantState& state, const contacts::internal::StoredContact& stored,
                           rocksdb::WriteBatch* batch);
  absl::Status ApplyMembershipChange(TenantState* state, const std::vector<contacts::internal::StoredContact>& before,
                                     const std::vector<contacts::internal::StoredContact>& after,
                                     rocksdb::WriteBatch* batch);

  std::unique_ptr<StoreDb> db_;
  const ContactRepositoryOptions options_;
  absl::Mutex tenants_mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<TenantState>> tenants_ ABSL_GUARDED_BY(tenants_mu_);
  uint32_t next_tenant_id_ ABSL_GUARDED_BY(tenants_mu_) = 1;
  std::unique_ptr<TenantState> blank_tenant_ ABSL_GUARDED_BY(tenants_mu_);  // see TenantOrBlank
  // BatchUpsert calls under way, of any tenant: a batch alone resolves its rows on two threads.
  std::atomic<int> batch_upserts_in_flight_{0};
  // Bumped and signalled after every applied import batch; see WaitForAppliedBatch.
  absl::Mutex applied_mu_;
  absl::CondVar applied_cv_;
  uint64_t applied_generation_ ABSL_GUARDED_BY(applied_mu_) = 0;
  // Frees a large batch's records, plans and staged writes after its caller has its answer.
  // Declared last: it finishes what is queued before anything else goes.
  DeferredRelease batch_release_;
};

}  // namespace contacts::store
