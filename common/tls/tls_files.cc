#include "common/tls/tls_files.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <memory>
#include <vector>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "absl/time/civil_time.h"
#include "common/status/status_macros.h"
#include "fmt/format.h"

namespace contacts {
namespace {

using SslContext = std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)>;

// OpenSSL's reason for the failure just seen ("no start line", "key values mismatch"), leaving
// its error queue empty.
std::string OpenSslReason() {
  const unsigned long error = ERR_peek_last_error();  // NOLINT(runtime/int): OpenSSL's type
  const char* text = error == 0 ? nullptr : ERR_reason_error_string(error);
  std::string reason = text != nullptr ? text : "unknown error";
  ERR_clear_error();
  return reason;
}

absl::StatusOr<SslContext> NewContext() {
  SslContext ctx(SSL_CTX_new(TLS_method()), SSL_CTX_free);
  if (ctx == nullptr) return absl::InternalError(fmt::format("TLS context: {}", OpenSslReason()));
  // An encrypted key would make OpenSSL ask for a passphrase on the terminal.
  SSL_CTX_set_default_passwd_cb(ctx.get(), [](char*, int, int, void*) { return 0; });
  return ctx;
}

}  // namespace

absl::StatusOr<std::string> ReadPemFile(std::string_view flag, const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return absl::InvalidArgumentError(fmt::format("{}: \"{}\" is a folder, not a PEM file", flag, path));
  }
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    return absl::InvalidArgumentError(fmt::format("{}: cannot read \"{}\": {}", flag, path, std::strerror(errno)));
  }
  std::string text;
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof(buffer), file)) > 0;) text.append(buffer, n);
  const bool failed = std::ferror(file) != 0;
  std::fclose(file);
  if (failed) return absl::InvalidArgumentError(fmt::format("{}: cannot read \"{}\"", flag, path));
  if (text.find("-----BEGIN") == std::string::npos) {
    return absl::InvalidArgumentError(
        fmt::format("{}: \"{}\" is not PEM (no \"-----BEGIN\" line; convert DER with openssl)", flag, path));
  }
  return text;
}

absl::Status CheckKeyPair(std::string_view cert_flag, const std::string& cert_path, std::string_view key_flag,
                          const std::string& key_path) {
  RETURN_IF_ERROR(ReadPemFile(cert_flag, cert_path).status());
  RETURN_IF_ERROR(ReadPemFile(key_flag, key_path).status());
  ASSIGN_OR_RETURN(SslContext ctx, NewContext());
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert_path.c_str()) != 1) {
    return absl::InvalidArgumentError(
        fmt::format("{}: \"{}\" holds no usable PEM certificate ({})", cert_flag, cert_path, OpenSslReason()));
  }
  // Loading the key also checks it against the certificate loaded above.
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), key_path.c_str(), SSL_FILETYPE_PEM) != 1) {
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
      ERR_clear_error();
      return absl::InvalidArgumentError(
          fmt::format("{}: \"{}\" is not the private key of the certificate in {}", key_flag, key_path, cert_flag));
    }
    return absl::InvalidArgumentError(fmt::format(
        "{}: \"{}\" holds no usable PEM private key ({}; a key encrypted with a passphrase is not supported)", key_flag,
        key_path, OpenSslReason()));
  }
  return absl::OkStatus();
}

absl::Status CheckCaFile(std::string_view flag, const std::string& path) {
  RETURN_IF_ERROR(ReadPemFile(flag, path).status());
  ASSIGN_OR_RETURN(SslContext ctx, NewContext());
  if (SSL_CTX_load_verify_locations(ctx.get(), path.c_str(), nullptr) != 1) {
    return absl::InvalidArgumentError(
        fmt::format("{}: \"{}\" holds no usable PEM CA certificate ({})", flag, path, OpenSslReason()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<absl::Time>> ReadCertificateExpiries(std::string_view flag, const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadPemFile(flag, path));
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())), BIO_free);
  if (bio == nullptr) return absl::InternalError(fmt::format("{}: reading \"{}\": {}", flag, path, OpenSslReason()));
  std::vector<absl::Time> expiries;
  ERR_clear_error();
  // Certificates are never encrypted: no passphrase callback should ever be asked.
  while (X509* read = PEM_read_bio_X509(
             bio.get(), nullptr, [](char*, int, int, void*) { return 0; }, nullptr)) {
    std::unique_ptr<X509, decltype(&X509_free)> certificate(read, X509_free);
    std::tm not_after{};
    if (ASN1_TIME_to_tm(X509_get0_notAfter(certificate.get()), &not_after) != 1) {
      return absl::InvalidArgumentError(fmt::format("{}: certificate {} in \"{}\" has an unreadable expiry date ({})",
                                                    flag, expiries.size() + 1, path, OpenSslReason()));
    }
    expiries.push_back(
        absl::FromCivil(absl::CivilSecond(not_after.tm_year + 1900, not_after.tm_mon + 1, not_after.tm_mday,
                                          not_after.tm_hour, not_after.tm_min, not_after.tm_sec),
                        absl::UTCTimeZone()));
  }
  // The read past the last certificate fails with "no start line": the end of the file. Any other
  // failure is a certificate block OpenSSL could not parse.
  const unsigned long error = ERR_peek_last_error();  // NOLINT(runtime/int): OpenSSL's type
  if (error != 0 && !(ERR_GET_LIB(error) == ERR_LIB_PEM && ERR_GET_REASON(error) == PEM_R_NO_START_LINE)) {
    return absl::InvalidArgumentError(fmt::format("{}: certificate {} in \"{}\" cannot be parsed ({})", flag,
                                                  expiries.size() + 1, path, OpenSslReason()));
  }
  ERR_clear_error();
  if (expiries.empty()) {
    return absl::InvalidArgumentError(fmt::format("{}: \"{}\" holds no PEM certificate", flag, path));
  }
  return expiries;
}

}  // namespace contacts
