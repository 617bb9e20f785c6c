#include "services/import_processor/ctl/tenant_commands.h"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "absl/strings/ascii.h"
#include "common/values/attribute_type.h"

namespace contacts::ctl {
namespace {

void PrintTenant(const v1::Tenant& tenant) {
  std::printf(
      "tenant %s\n  primary key: %s\n  default country code: %s\n  email unique: %s\n  mobile unique: %s\n"
      "  contacts: %llu\n",
      tenant.name().c_str(),
      tenant.primary_key_attribute().empty() ? "(not set up)" : tenant.primary_key_attribute().c_str(),
      tenant.default_country_code().c_str(), tenant.email_unique() ? "yes" : "no",
      tenant.mobile_unique() ? "yes" : "no", static_cast<unsigned long long>(tenant.contact_count()));
}

}  // namespace

int ShowTenant(Client& client, const Options& /*options*/) {
  auto ctx = client.Context();
  v1::Tenant tenant;
  grpc::Status status = client.store().GetTenant(ctx.get(), v1::GetTenantRequest(), &tenant);
  if (!status.ok()) return client.Fail(Service::kStore, status);
  PrintTenant(tenant);
  return 0;
}

int SetupTenant(Client& client, const Options& options) {
  const std::optional<std::string> primary_key = One(options, "primary-key");
  if (!primary_key || primary_key->empty()) {
    Usage("setup needs --primary-key NAME (email, mobile, or a new attribute such as customer_id)");
  }
  v1::SetupTenantRequest request;
  request.set_primary_key_attribute(*primary_key);
  if (const std::optional<std::string> type_name = One(options, "type")) {
    const std::optional<AttributeType> type = ParseAttributeTypeName(*type_name);
    if (!type) {
      Usage(fmt::format("--type takes text, integer, decimal, boolean, date, datetime, email or mobile; got \"{}\"",
                        *type_name));
    }
    request.set_primary_key_type(static_cast<v1::AttributeType>(static_cast<int>(*type)));  // same numbers
  }
  if (const std::optional<std::string> code = One(options, "country-code")) {
    // People write "+44"; the store takes the digits.
    std::string digits = *code;
    if (!digits.empty() && digits[0] == '+') digits.erase(0, 1);
    if (digits.empty() || !std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit)) {
      Usage(fmt::format("--country-code takes digits such as 91 or +44; got \"{}\"", *code));
    }
    request.set_default_country_code(digits);
  }
  auto ctx = client.Context();
  v1::Tenant tenant;
  grpc::Status status = client.store().SetupTenant(ctx.get(), request, &tenant);
  if (!status.ok()) return client.Fail(Service::kStore, status);
  PrintTenant(tenant);
  return 0;
}

int ListAttributes(Client& client, const Options& /*options*/) {
  auto ctx = client.Context();
  v1::ListAttributesResponse response;
  grpc::Status status = client.store().ListAttributes(ctx.get(), v1::ListAttributesRequest(), &response);
  if (!status.ok()) return client.Fail(Service::kStore, status);
  std::printf("%-32s %-9s %-8s NOTE\n", "NAME", "TYPE", "INDEXED");
  for (const v1::Attribute& attribute : response.attributes()) {
    std::string note = attribute.primary_key() ? "primary key" : attribute.system() ? "system" : "";
    if (!attribute.display_name().empty() && attribute.display_name() != attribute.name()) {
      note += fmt::format("{}\"{}\"", note.empty() ? "" : ", ", attribute.display_name());
    }
    std::string line = fmt::format("{:<32} {:<9} {:<8} {}", attribute.name(), v1::AttributeType_Name(attribute.type()),
                                   attribute.indexed() ? "yes" : "no", note);
    line.erase(line.find_last_not_of(' ') + 1);
    std::printf("%s\n", line.c_str());
  }
  return 0;
}

int ListLists(Client& client, const Options& /*options*/) {
  auto ctx = client.Context();
  v1::ListListsResponse response;
  grpc::Status status = client.store().ListLists(ctx.get(), v1::ListListsRequest(), &response);
  if (!status.ok()) return client.Fail(Service::kStore, status);
  std::printf("%-8s %-32s %s\n", "ID", "NAME", "MEMBERS");
  for (const v1::ContactList& list : response.lists()) {
    std::printf("%-8llu %-32s %llu\n", static_cast<unsigned long long>(list.id()), list.name().c_str(),
                static_cast<unsigned long long>(list.member_count()));
  }
  return 0;
}

int CreateList(Client& client, const Options& options) {
  if (options.positional.size() != 1) Usage("create-list needs a NAME");
  v1::CreateListRequest request;
  request.set_name(options.positional[0]);
  auto ctx = client.Context();
  v1::ContactList list;
  grpc::Status status = client.store().CreateList(ctx.get(), request, &list);
  if (!status.ok()) return client.Fail(Service::kStore, status);
  std::printf("list %llu %s\n", static_cast<unsigned long long>(list.id()), list.name().c_str());
  return 0;
}

}  // namespace contacts::ctl
