// jemalloc's options for the binaries that link it (contacts_allocator in the root CMakeLists.txt).
// jemalloc reads this symbol at start; MALLOC_CONF in the environment is applied after it, so an
// operator can still override any of them.
//
// narenas:1: one arena for every thread. A batch's records are made on helper threads and freed
// on the release thread (services/contact_store/deferred_release.h); with jemalloc's default of
// four arenas per CPU each new helper thread took memory from an arena the last batch had not
// freed into, faulting in fresh pages. One arena per CPU (percpu_arena, session 16) still split
// the freed memory in two: with a single arena a 1M-row import faulted in 15-20% fewer huge
// pages, peaked ~30 MiB lower in each service and took ~10% less time (6 alternated pairs,
// tests/bench/RESULTS.md, session 24). Small allocations stay lock-free in each thread's cache.
// dirty_decay_ms:60000: freed pages go back to the system over a minute instead of ten seconds,
// so the pages one 25,000-row batch frees are reused by the next ones instead of being returned
// and faulted in again; they are returned within a minute of a load ending.
// With per-CPU arenas then: -6% for an in-process insert of 1M contacts (RESULTS.md, session 16).
// thp:always: jemalloc asks for transparent huge pages on its memory (madvise; the kernel's
// transparent_hugepage setting "madvise", Debian's default, honours it), so memory a batch touches
// for the first time faults in 2 MiB at a time instead of 4 KiB: a 1M-row import faulted ~109k
// times in contact-store before, ~7k after. Where page faults are dear (the build machine, a
// nested VM: the fault handler's interrupt re-enable was 8% of all CPU) the import took 16-21%
// less time (session 23), for ~11% more peak RSS in contact-store and ~20% in import-processor
// during the import. With transparent_hugepage "never" it does nothing.
extern "C" {
// NOLINTNEXTLINE: the name and type are jemalloc's.
const char* malloc_conf = "narenas:1,dirty_decay_ms:60000,thp:always";
}
