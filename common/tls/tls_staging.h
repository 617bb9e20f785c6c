// TlsStagingFolder: the private copies of the TLS files that gRPC reads, so that gRPC only ever
// sees files that passed our checks. gRPC 1.51's FileWatcherCertificateProvider loads whatever is
// at its paths: a key that is not the certificate's fails every new handshake, an empty
// certificate or key file aborts the process. CertificateMonitor checks the files the flags name
// and stages them here; gRPC is given the staged paths.
//
// Layout, as the kubelet lays out a Secret volume:
//   <folder>/              made with mkdtemp, mode 0700: under /dev/shm when usable (memory, so
//                          private keys never reach the node's disk), else $TMPDIR or /tmp
//     gen-<N>/<name>       one generation: every staged file, mode 0600
//     current -> gen-<N>   swapped with rename(2), so current/<name> always reads one generation
// gRPC reads a key and its certificate one after the other and reads them again when either
// file's modification time (in whole seconds) changed meanwhile: every generation's files carry
// one mtime, later than the previous generation's by a second at least, so a swap between the two
// reads is noticed. Older generations are removed at each swap (readers resolve current/ anew on
// every open; a file already open stays readable), the folder when the object is destroyed. The
// process holds an flock on <folder>/owner.lock while the folder lives: a folder nobody holds it
// of, left by a process that was killed, is removed when the next one is made in the same place
// (whatever PID namespace each process runs in: containers sharing /dev/shm reuse pids).
#pragma once

#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace contacts {

class TlsStagingFolder {
 public:
  // Where the folder goes, best first: /dev/shm when it is a folder this process may write, then
  // $TMPDIR when set, then /tmp.
  static std::vector<std::string> DefaultParents();

  // Makes the folder in the first of `parents` that allows it. Errors: FAILED_PRECONDITION naming
  // every parent tried and why it failed (none given included).
  static absl::StatusOr<std::unique_ptr<TlsStagingFolder>> Create(const std::vector<std::string>& parents);

  // Removes the folder with every generation.
  ~TlsStagingFolder();
  TlsStagingFolder(const TlsStagingFolder&) = delete;
  TlsStagingFolder& operator=(const TlsStagingFolder&) = delete;

  const std::string& path() const { return path_; }

  // <folder>/current/<name>: the path to give gRPC for the file staged as `name`.
  std::string CurrentPath(std::string_view name) const;

  // Writes `files` (name -> content) as a new generation, runs `verify` on that generation's
  // folder (its files are at <folder>/<name>) and, when it succeeds, points current at it and
  // removes the generations before. When it fails, or writing fails, the new generation is
  // removed and current is left as it was. Errors: verify's; INTERNAL naming the file or link
  // that could not be written. REQUIRES: names are plain file names; one caller at a time.
  absl::Status Stage(const std::map<std::string, std::string>& files,
                     const std::function<absl::Status(const std::string& generation_dir)>& verify);

  // Generations staged so far (the number in current's target), 0 before the first.
  int generation() const { return generation_; }

 private:
  TlsStagingFolder(std::string path, int owner_lock_fd) : path_(std::move(path)), owner_lock_fd_(owner_lock_fd) {}

  // Writes `files` into the folder `dir`, made already.
  absl::Status WriteGeneration(const std::string& dir, const std::map<std::string, std::string>& files,
                               std::time_t mtime);

  const std::string path_;
  const int owner_lock_fd_;  // holds the flock of <folder>/owner.lock
  int generation_ = 0;
  std::time_t last_mtime_ = 0;  // the files of generation_
};

}  // namespace contacts
