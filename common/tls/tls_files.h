// Checks of the PEM files a TLS flag names, made before the files are handed to gRPC: gRPC takes
// any file at start and then fails every handshake (logging why), which reads as a dead service or
// a network fault rather than a wrong flag. Used by the services' start-up checks and contactsctl.
//
// `flag` is how the caller names the flag in messages: "--tls_cert_file", or "CONTACTS_TLS_CERT
// (--tls-cert)" for a value from the environment. Every error is INVALID_ARGUMENT starting with it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace contacts {

// The file's text. Errors: a folder, a file that cannot be read (with the system's reason), a file
// without a PEM block ("-----BEGIN"; DER must be converted).
absl::StatusOr<std::string> ReadPemFile(std::string_view flag, const std::string& path);

// The certificate chain and its private key, loaded as the TLS library will. Errors: ReadPemFile's
// for either; a certificate file with no usable certificate; a key file with no usable key (a key
// encrypted with a passphrase included); a key that is not the certificate's.
absl::Status CheckKeyPair(std::string_view cert_flag, const std::string& cert_path, std::string_view key_flag,
                          const std::string& key_path);

// CA certificates to verify the other side with. Errors: ReadPemFile's; no usable certificate.
absl::Status CheckCaFile(std::string_view flag, const std::string& path);

// The expiry (notAfter) of every certificate in the file, in file order: for a certificate chain
// the leaf's first. Other PEM blocks (a key) are skipped. Errors: ReadPemFile's; no certificate, or
// a certificate OpenSSL cannot parse.
absl::StatusOr<std::vector<absl::Time>> ReadCertificateExpiries(std::string_view flag, const std::string& path);

}  // namespace contacts
