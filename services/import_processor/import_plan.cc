#include "services/import_processor/import_plan.h"

#include <utility>

#include <fmt/format.h>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "common/values/text_case.h"

namespace contacts {
std::string CutReportedValue(std::string_view value) {
  if (value.size() <= kMaxReportedValueBytes) return std::string(value);
  size_t n = kMaxReportedValueBytes;
  while (n > 0 && (static_cast<unsigned char>(value[n]) & 0xC0) == 0x80) --n;  // UTF-8 boundary
  return std::string(value.substr(0, n));
}

bool IsValidAttributeName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!alpha(name[0])) return false;
  for (char c : name) {
    if (!alpha(c) && !(c >= '0' && c <= '9') && c != '_') return false;
  }
  return true;
}

absl::StatusOr<ImportPlan> BuildImportPlan(const std::vector<std::string>& header,
                                           const std::vector<ColumnMappingSpec>& mapping,
                                           const std::vector<AttributeInfo>& existing,
                                           const std::vector<NewAttributeSpec>& create,
                                           std::string_view primary_key_attribute, bool fix_email_typos,
                                           const ValueOptions& value_options) {
  if (mapping.empty()) return absl::InvalidArgumentError("mapping: at least the primary key column must be mapped");

  ImportPlan plan;
  plan.header_fields = header.size();
  plan.fix_email_typos = fix_email_typos;
  plan.value_options = value_options;

  absl::flat_hash_map<std::string, const AttributeInfo*> schema;  // lower-case name -> attribute
  for (const AttributeInfo& attribute : existing) schema.emplace(AsciiLower(attribute.name), &attribute);

  // New attributes: valid, not listed twice, and not clashing with an existing one of another type.
  absl::flat_hash_map<std::string, AttributeInfo> created;  // lower-case name -> attribute
  for (const NewAttributeSpec& spec : create) {
    if (!IsValidAttributeName(spec.name)) {
      return absl::InvalidArgumentError(
          fmt::format("create_attributes: \"{}\" is not a valid attribute name ([A-Za-z][A-Za-z0-9_]*)", spec.name));
    }
    if (!AttributeTypeFromNumber(static_cast<int>(spec.type))) {
      return absl::InvalidArgumentError(fmt::format("create_attributes: attribute \"{}\" needs a type", spec.name));
    }
    const std::string key = AsciiLower(spec.name);
    if (created.contains(key)) {
      return absl::InvalidArgumentError(fmt::format("create_attributes: attribute \"{}\" is listed twice", spec.name));
    }
    if (auto it = schema.find(key); it != schema.end()) {
      if (it->second->type != spec.type) {
        return absl::InvalidArgumentError(
            fmt::format("create_attributes: attribute \"{}\" already exists with type {}, not {}", it->second->name,
                        AttributeTypeName(it->second->type), AttributeTypeName(spec.type)));
      }
      continue;  // exists with the same type: nothing to create
    }
    created.emplace(key, AttributeInfo{spec.name, spec.type, false});
    plan.to_create.push_back(spec);
  }

  // Header positions by trimmed name (TrimColumnName); a name present twice cannot be mapped. A
  // mapped column not found so is looked for as it reads (SpacedColumnName): the preview shows
  // "First\u00A0Name" as "First Name", and that is what a person types.
  absl::flat_hash_map<std::string_view, size_t> positions;
  absl::flat_hash_set<std::string_view> ambiguous;
  absl::flat_hash_map<std::string, size_t> positions_as_read;
  absl::flat_hash_set<std::string> ambiguous_as_read;
  for (size_t i = 0; i < header.size(); ++i) {
    std::string_view name = TrimColumnName(header[i]);
    if (!positions.emplace(name, i).second) ambiguous.insert(name);
    std::string as_read = SpacedColumnName(name);
    if (!positions_as_read.emplace(as_read, i).second) ambiguous_as_read.insert(std::move(as_read));
  }

  absl::flat_hash_set<size_t> mapped_columns;
  absl::flat_hash_set<std::string> mapped_attributes;
  const std::string pk_key = AsciiLower(primary_key_attribute);
  bool pk_mapped = false;
  for (const ColumnMappingSpec& m : mapping) {
    std::string_view column = TrimColumnName(m.column);
    size_t index = 0;
    if (auto pos = positions.find(column); pos != positions.end()) {
      if (ambiguous.contains(column)) {
        return absl::InvalidArgumentError(
            fmt::format("mapping: column \"{}\" appears more than once in the file's header", m.column));
      }
      index = pos->second;
    } else if (auto read = positions_as_read.find(SpacedColumnName(column)); read != positions_as_read.end()) {
      if (ambiguous_as_read.contains(read->first)) {
        return absl::InvalidArgumentError(fmt::format(
            "mapping: column \"{}\" matches more than one column of the file's header (they differ only in white "
            "space); name one exactly",
            m.column));
      }
      index = read->second;
    } else {
      return absl::InvalidArgumentError(fmt::format("mapping: column \"{}\" is not in the file's header", m.column));
    }
    if (!mapped_columns.insert(index).second) {
      return absl::InvalidArgumentError(fmt::format("mapping: column \"{}\" is mapped twice", m.column));
    }
    const std::string key = AsciiLower(TrimColumnName(m.attribute));
    const AttributeInfo* attribute = nullptr;
    if (auto it = schema.find(key); it != schema.end()) {
      attribute = it->second;
    } else if (auto c = created.find(key); c != created.end()) {
      attribute = &c->second;
    } else {
      return absl::InvalidArgumentError(
          fmt::format("mapping: attribute \"{}\" (column \"{}\") does not exist; add it to create_attributes",
                      m.attribute, m.column));
    }
    if (!mapped_attributes.insert(key).second) {
      return absl::InvalidArgumentError(
          fmt::format("mapping: attribute \"{}\" is mapped from more than one column", attribute->name));
    }
    if (key == pk_key) {
      pk_mapped = true;
      plan.primary_key = plan.columns.size();
    }
    plan.columns.push_back(
        MappedColumn{index, std::string(TrimColumnName(header[index])), attribute->name, attribute->type});
  }
  if (!pk_mapped) {
    return absl::InvalidArgumentError(
        fmt::format("mapping: the primary key attribute \"{}\" must be mapped to a column", primary_key_attribute));
  }
  return plan;
}

std::string RaggedRowMessage(size_t fields, size_t header_fields) {
  return fmt::format("row has {} fields, the header has {}", fields, header_fields);
}

std::string RejectionReason(std::string_view reason_key, std::string_view message) {
  return message.empty() ? std::string(reason_key) : fmt::format("{}: {}", reason_key, message);
}

RowValidator::RowValidator(const ImportPlan& plan, EmailTypoFixer fixer) : plan_(plan), fixer_(fixer) {}

bool RowValidator::Validate(const std::vector<std::string_view>& fields, ValidatedRow* row,
                            RowRejection* rejection) const {
  row->fixes.clear();
  if (fields.size() != plan_.header_fields) {
    rejection->reason_key = kRaggedRowReasonKey;
    rejection->column.clear();
    rejection->value.clear();
    rejection->message = RaggedRowMessage(fields.size(), plan_.header_fields);
    return false;
  }
  row->values.resize(plan_.columns.size());
  for (size_t i = 0; i < plan_.columns.size(); ++i) {
    const MappedColumn& column = plan_.columns[i];
    std::string_view raw = fields[column.column_index];
    // Normalised into the string the previous row's value used: its capacity serves again, so a
    // row costs no allocation per value.
    std::string& value = row->values[i];
    value.clear();
    if (absl::Status normalized = AppendNormalizedValue(column.type, raw, plan_.value_options, &value);
        !normalized.ok()) {
      rejection->reason_key = "invalid_value:" + column.attribute;
      rejection->column = column.column;
      rejection->value = CutReportedValue(raw);
      rejection->message = std::string(normalized.message());
      return false;
    }
    if (plan_.fix_email_typos && column.type == AttributeType::kEmail && !value.empty() && fixer_ != nullptr) {
      if (std::optional<std::string> fixed = fixer_(value); fixed && *fixed != value) {
        row->fixes.push_back(EmailFix{column.column, value, *fixed});
        value = std::move(*fixed);
      }
    }
  }
  if (row->values[plan_.primary_key].empty()) {
    const MappedColumn& pk = plan_.columns[plan_.primary_key];
    rejection->reason_key = "missing_primary_key";
    rejection->column = pk.column;
    rejection->value.clear();
    rejection->message = fmt::format("the primary key column \"{}\" is empty", pk.column);
    return false;
  }
  return true;
}

bool RowValidator::ValidateKey(const std::vector<std::string_view>& fields, std::string* key) const {
  if (!Validate(fields, &scratch_, &scratch_rejection_)) return false;
  key->swap(scratch_.values[plan_.primary_key]);
  return true;
}

}  // namespace contacts
