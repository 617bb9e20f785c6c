#include "services/import_processor/job_store.h"

#include <chrono>
#include <random>

#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include "common/status/status_macros.h"

namespace contacts {
namespace {

constexpr char kFormatVersionKey[] = "format_version";
constexpr char kFormatVersion[] = "1";

absl::Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return absl::OkStatus();
  const std::string message = fmt::format("jobs db: {}: {}", what, s.ToString());
  if (s.IsNotFound()) return absl::NotFoundError(message);
  if (s.IsBusy() || s.IsTimedOut() || s.IsTryAgain() || s.IsIOError()) return absl::UnavailableError(message);
  return absl::InternalError(message);
}

std::string CancelRequestKey(std::string_view job_id) { return "cancel/" + std::string(job_id); }

void AppendBigEndian(std::string* out, uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

template <typename Proto>
absl::StatusOr<Proto> ParseValue(const rocksdb::Slice& value, std::string_view what) {
  Proto proto;
  if (!proto.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return absl::DataLossError(fmt::format("jobs db: corrupt {} record", what));
  }
  return proto;
}

}  // namespace

std::string NewId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  return fmt::format("{:016x}{:08x}", static_cast<uint64_t>(micros), static_cast<uint32_t>(rng()));
}

std::string JobLogKey(std::string_view job_id, JobLogKind kind, uint64_t row, uint32_t seq) {
  std::string key(job_id);
  key.push_back(static_cast<char>(kind));
  AppendBigEndian(&key, row, 8);
  AppendBigEndian(&key, seq, 4);
  return key;
}

rocksdb::WriteOptions JobStore::Synced() const {
  rocksdb::WriteOptions options;
  options.sync = sync_;
  return options;
}

void JobStore::SetFaultForTesting(std::function<absl::Status(std::string_view what)> fault) {
  std::lock_guard lock(fault_mu_);
  fault_ = std::move(fault);
  has_fault_.store(fault_ != nullptr, std::memory_order_release);
}

absl::Status JobStore::Fault(std::string_view what) const {
  if (!has_fault_.load(std::memory_order_acquire)) return absl::OkStatus();
  std::function<absl::Status(std::string_view)> fault;
  {
    std::lock_guard lock(fault_mu_);
    fault = fault_;
  }
  if (fault == nullptr) return absl::OkStatus();
  absl::Status status = fault(what);
  if (status.ok()) return status;
  return absl::Status(status.code(), fmt::format("jobs db: {}: {}", what, std::string(status.message())));
}

absl::StatusOr<std::unique_ptr<JobStore>> JobStore::Open(const std::string& path, bool sync) {
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  rocksdb::ColumnFamilyOptions cf_options;
  cf_options.write_buffer_size = 8 << 20;  // small memtables: the jobs db is tiny next to the budget
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, cf_options},
      {"uploads", cf_options},
      {"jobs", cf_options},
      {"errors", cf_options},
  };
  std::unique_ptr<JobStore> store(new JobStore());
  store->sync_ = sync;
  rocksdb::DB* db = nullptr;
  if (auto s = FromRocks(rocksdb::DB::Open(db_options, path, families, &store->handles_, &db), "open " + path);
      !s.ok()) {
    return s;
  }
  store->db_.reset(db);
  store->uploads_ = store->handles_[1];
  store->jobs_ = store->handles_[2];
  store->errors_ = store->handles_[3];

  std::string version;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), kFormatVersionKey, &version);
  if (s.IsNotFound()) {
    if (auto put = FromRocks(db->Put(store->Synced(), kFormatVersionKey, kFormatVersion), "write format version");
        !put.ok()) {
      return put;
    }
  } else if (!s.ok()) {
    return FromRocks(s, "read format version");
  } else if (version != kFormatVersion) {
    return absl::FailedPreconditionError(
        fmt::format("jobs db {} has format version {}, this binary reads {}", path, version, kFormatVersion));
  }
  return store;
}

JobStore::~JobStore() {
  if (db_ == nullptr) return;
  for (rocksdb::ColumnFamilyHandle* handle : handles_) db_->DestroyColumnFamilyHandle(handle);
  db_->Close();
}

absl::Status JobStore::PutUpload(const internal::StoredUpload& upload) {
  RETURN_IF_ERROR(Fault("write upload"));
  return FromRocks(db_->Put(Synced(), uploads_, upload.id(), upload.SerializeAsString()), "write upload");
}

absl::StatusOr<internal::StoredUpload> JobStore::GetUpload(std::string_view id) const {
  RETURN_IF_ERROR(Fault("read upload"));
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), uploads_, rocksdb::Slice(id.data(), id.size()), &value);
  if (s.IsNotFound()) return absl::NotFoundError(fmt::format("upload \"{}\" not found", id));
  if (!s.ok()) return FromRocks(s, "read upload");
  return ParseValue<internal::StoredUpload>(value, "upload");
}

absl::Status JobStore::DeleteUpload(std::string_view id) {
  RETURN_IF_ERROR(Fault("delete upload"));
  return FromRocks(db_->Delete(Synced(), uploads_, rocksdb::Slice(id.data(), id.size())), "delete upload");
}

absl::Status JobStore::ScanUploads(absl::FunctionRef<bool(internal::StoredUpload&&)> visit) const {
  RETURN_IF_ERROR(Fault("scan uploads"));
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), uploads_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto upload = ParseValue<internal::StoredUpload>(it->value(), "upload");
    if (!upload.ok()) return upload.status();
    if (!visit(*std::move(upload))) break;
  }
  return FromRocks(it->status(), "scan uploads");
}

absl::Status JobStore::PutJob(const internal::StoredJob& job) {
  RETURN_IF_ERROR(Fault("write job"));
  return FromRocks(db_->Put(Synced(), jobs_, job.job().id(), job.SerializeAsString()), "write job");
}

absl::StatusOr<internal::StoredJob> JobStore::GetJob(std::string_view id) const {
  RETURN_IF_ERROR(Fault("read job"));
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), jobs_, rocksdb::Slice(id.data(), id.size()), &value);
  if (s.IsNotFound()) return absl::NotFoundError(fmt::format("job \"{}\" not found", id));
  if (!s.ok()) return FromRocks(s, "read job");
  return ParseValue<internal::StoredJob>(value, "job");
}

absl::Status JobStore::Checkpoint(const internal::StoredJob& job, const std::vector<v1::JobError>& rejected,
                                  const std::vector<v1::JobError>& fixed) {
  RETURN_IF_ERROR(Fault("write checkpoint"));
  rocksdb::WriteBatch batch;
  const std::string& id = job.job().id();
  std::string buffer;
  for (const v1::JobError& error : rejected) {
    error.SerializeToString(&buffer);
    batch.Put(errors_, JobLogKey(id, JobLogKind::kRejected, error.row_number(), 0), buffer);
  }
  uint32_t seq = 0;
  uint64_t last_row = 0;
  for (const v1::JobError& fix : fixed) {
    seq = fix.row_number() == last_row ? seq + 1 : 0;
    last_row = fix.row_number();
    fix.SerializeToString(&buffer);
    batch.Put(errors_, JobLogKey(id, JobLogKind::kFixed, fix.row_number(), seq), buffer);
  }
  batch.Put(jobs_, id, job.SerializeAsString());
  return FromRocks(db_->Write(Synced(), &batch), "write checkpoint");
}

absl::Status JobStore::ScanJobs(std::string_view after_id, absl::FunctionRef<bool(internal::StoredJob&&)> visit,
                                std::vector<std::string>* unreadable) const {
  RETURN_IF_ERROR(Fault("scan jobs"));
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), jobs_));
  if (after_id.empty()) {
    it->SeekToLast();
  } else {
    it->SeekForPrev(rocksdb::Slice(after_id.data(), after_id.size()));
    if (it->Valid() && it->key() == rocksdb::Slice(after_id.data(), after_id.size())) it->Prev();
  }
  for (; it->Valid(); it->Prev()) {
    auto job = ParseValue<internal::StoredJob>(it->value(), "job");
    if (!job.ok() && unreadable != nullptr) {
      unreadable->push_back(it->key().ToString());
      continue;
    }
    if (!job.ok()) return job.status();
    if (!visit(*std::move(job))) break;
  }
  return FromRocks(it->status(), "scan jobs");
}

absl::StatusOr<uint64_t> JobStore::DeleteJob(std::string_view job_id) {
  RETURN_IF_ERROR(Fault("delete job"));
  if (job_id.empty()) return absl::InvalidArgumentError("jobs db: delete job: no job id");
  // Ids are fixed-width, so [id, id with its last byte + 1) holds this job's log records and no
  // other job's.
  const std::string begin(job_id);
  std::string end = begin;
  end.back() = static_cast<char>(end.back() + 1);
  const rocksdb::Slice end_slice(end);
  rocksdb::ReadOptions options;
  options.iterate_upper_bound = &end_slice;
  uint64_t log_records = 0;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options, errors_));
  for (it->Seek(begin); it->Valid(); it->Next()) ++log_records;
  RETURN_IF_ERROR(FromRocks(it->status(), "delete job"));
  it.reset();

  // One range tombstone however long the log (a 1M-row job with every row rejected would need a
  // million point deletes), and the record in the same batch. The disk space comes back when
  // compaction reaches the deleted records: with new writes, and at the latest through RocksDB's
  // ttl (30 days by default), which compacts older files down.
  rocksdb::WriteBatch batch;
  RETURN_IF_ERROR(FromRocks(batch.DeleteRange(errors_, begin, end), "delete job"));
  RETURN_IF_ERROR(FromRocks(batch.Delete(jobs_, begin), "delete job"));
  RETURN_IF_ERROR(FromRocks(batch.Delete(CancelRequestKey(job_id)), "delete job"));
  RETURN_IF_ERROR(FromRocks(db_->Write(Synced(), &batch), "delete job"));
  return log_records;
}

absl::Status JobStore::PutRawJobForTesting(std::string_view job_id, std::string_view bytes) {
  return FromRocks(db_->Put(Synced(), jobs_, rocksdb::Slice(job_id.data(), job_id.size()),
                            rocksdb::Slice(bytes.data(), bytes.size())),
                   "write job");
}

absl::Status JobStore::RecordCancelRequest(std::string_view job_id) {
  RETURN_IF_ERROR(Fault("write cancel request"));
  return FromRocks(db_->Put(Synced(), CancelRequestKey(job_id), ""), "write cancel request");
}

absl::StatusOr<bool> JobStore::CancelRequested(std::string_view job_id) const {
  RETURN_IF_ERROR(Fault("read cancel request"));
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), CancelRequestKey(job_id), &value);
  if (s.IsNotFound()) return false;
  RETURN_IF_ERROR(FromRocks(s, "read cancel request"));
  return true;
}

absl::Status JobStore::ScanLog(std::string_view job_id, JobLogKind kind,
                               absl::FunctionRef<bool(v1::JobError&&)> visit) const {
  RETURN_IF_ERROR(Fault("scan job log"));
  std::string prefix(job_id);
  prefix.push_back(static_cast<char>(kind));
  std::string upper = prefix;
  upper.back() = static_cast<char>(upper.back() + 1);
  rocksdb::ReadOptions options;
  rocksdb::Slice upper_slice(upper);
  options.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options, errors_));
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    auto error = ParseValue<v1::JobError>(it->value(), "job error");
    if (!error.ok()) return error.status();
    if (!visit(*std::move(error))) break;
  }
  return FromRocks(it->status(), "scan job log");
}

}  // namespace contacts
