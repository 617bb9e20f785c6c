#include "services/contact_store/deferred_release.h"

#include <utility>

namespace contacts::store {

void DeferredRelease::Release(std::function<void()> release) {
  if (pending_.fetch_add(1) >= max_pending_) {
    release();
    pending_.fetch_sub(1);
    return;
  }
  thread_.Run([this, release = std::move(release)] {
    release();
    pending_.fetch_sub(1);
  });
}

}  // namespace contacts::store
