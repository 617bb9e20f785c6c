// ImportPlan: a StartImport request checked against the uploaded file's header and the tenant's
// schema, reduced to what the worker needs for every row (which column feeds which attribute, of
// which type). RowValidator applies a plan to one CSV record: it normalises each mapped value,
// fixes email typos when asked, and either yields the canonical values or says why the row is
// rejected. Both are pure: no I/O, no gRPC.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/values/attribute_type.h"
#include "common/values/typed_value.h"
#include "services/import_processor/column_mapping.h"

namespace contacts {

struct ColumnMappingSpec {
  std::string column;     // header name in the file
  std::string attribute;  // attribute name (case-insensitive)
};

struct NewAttributeSpec {
  std::string name;
  AttributeType type = AttributeType::kText;
  bool indexed = false;
};

struct MappedColumn {
  size_t column_index = 0;  // field index in each record
  std::string column;       // header name
  std::string attribute;    // the attribute's name as the schema spells it
  AttributeType type = AttributeType::kText;
};

struct ImportPlan {
  std::vector<MappedColumn> columns;  // in mapping order
  size_t primary_key = 0;             // index into `columns`
  size_t header_fields = 0;           // fields every record must have
  bool fix_email_typos = false;
  ValueOptions value_options;
  // Attributes of the request's create_attributes that do not exist yet: the caller creates them
  // before the job starts.
  std::vector<NewAttributeSpec> to_create;
};

// True for attribute names matching [A-Za-z][A-Za-z0-9_]* (at most 64 bytes).
bool IsValidAttributeName(std::string_view name);

// Checks a StartImport request. `existing` is the tenant's schema; `primary_key_attribute` the
// tenant's primary-key attribute name. A mapped column is the header's column of the same name
// once both are trimmed (TrimColumnName: Unicode white space too), else the one that reads the
// same (SpacedColumnName: "First Name" finds "First\u00A0Name").
// Errors: INVALID_ARGUMENT naming the offending column or attribute: an empty mapping; a mapped
// column missing from the header (or present twice in it, or reading like two of its columns); a
// column or an attribute mapped twice; an attribute that neither exists nor is in `create`; a new
// attribute with an invalid name or type, or one that exists with another type, or one listed
// twice; the primary key not mapped.
absl::StatusOr<ImportPlan> BuildImportPlan(const std::vector<std::string>& header,
                                           const std::vector<ColumnMappingSpec>& mapping,
                                           const std::vector<AttributeInfo>& existing,
                                           const std::vector<NewAttributeSpec>& create,
                                           std::string_view primary_key_attribute, bool fix_email_typos,
                                           const ValueOptions& value_options);

// A value as the job log quotes it: at most kMaxReportedValueBytes, cut where a UTF-8 character
// starts (log records are proto3 strings: one holding half a character cannot be parsed back).
inline constexpr size_t kMaxReportedValueBytes = 256;
std::string CutReportedValue(std::string_view value);

// Why a row is not imported. reason_key is the bounded key of JobCounts.rejected_by_reason:
// "ragged_row", "missing_primary_key" or "invalid_value:<attribute>".
struct RowRejection {
  std::string reason_key;
  std::string column;   // header name, empty for ragged rows
  std::string value;    // the raw value, cut to 256 bytes
  std::string message;  // what is wrong, e.g. `"forty" is not an INTEGER`
};

// The reason_key of a row whose field count differs from the header's.
inline constexpr std::string_view kRaggedRowReasonKey = "ragged_row";

// The message of a ragged row's rejection: "row has 2 fields, the header has 5". RowValidator
// rejects such rows with it, and the Upload preview flags its sample rows with it.
std::string RaggedRowMessage(size_t fields, size_t header_fields);

// A rejected row's reason as the job's error log gives it (JobError.reason): "<reason_key>:
// <message>", or the key alone when there is no message.
std::string RejectionReason(std::string_view reason_key, std::string_view message);

// One email changed by the typo fixer.
struct EmailFix {
  std::string column;
  std::string original;  // as normalised, before the fix
  std::string fixed;
};

// The canonical values of an accepted row, parallel to ImportPlan::columns ("" = not set: the
// attribute is left alone).
struct ValidatedRow {
  std::vector<std::string> values;
  std::vector<EmailFix> fixes;

  const std::string& primary_key(const ImportPlan& plan) const { return values[plan.primary_key]; }
};

// Returns the corrected address for a normalised email with a domain typo, or nullopt.
using EmailTypoFixer = std::optional<std::string> (*)(std::string_view normalized_email);

class RowValidator {
 public:
  // `plan` must outlive the validator. `fixer` is used only when plan.fix_email_typos.
  RowValidator(const ImportPlan& plan, EmailTypoFixer fixer);

  // Validates one record. Returns true and fills *row (reusing its buffers) when the row is
  // accepted; returns false and fills *rejection otherwise.
  bool Validate(const std::vector<std::string_view>& fields, ValidatedRow* row, RowRejection* rejection) const;

  // Only the primary key, for the dedup pass: true and *key when the row would be accepted.
  // Equivalent to Validate(...) && key == row.primary_key(plan), without keeping the other values.
  bool ValidateKey(const std::vector<std::string_view>& fields, std::string* key) const;

 private:
  const ImportPlan& plan_;
  EmailTypoFixer fixer_;
  mutable ValidatedRow scratch_;
  mutable RowRejection scratch_rejection_;
};

}  // namespace contacts
