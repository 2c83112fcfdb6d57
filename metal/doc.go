// Package metal is netipl's freestanding kernel: it runs one unmodified GOOS=linux GOARCH=s390x
// program (the loader) on a bare s390x machine by implementing the subset of the Linux system-call
// ABI listed in docs/abi.md.
//
// Reference: z/Architecture Principles of Operation (PoP), SA22-7832-13; Linux arch/s390 for the
// ABI details (signal frame, clone, syscall numbers). Supported subset and deviations are in
// docs/metal.md; the physical memory map is in docs/memory.md.
//
// Rules for this package (enforced by restrict_test.go): no heap allocation, no package
// initialisation that needs code (init never runs), no goroutines, no calls into the Go
// runtime beyond the compiler's memmove/memclr helpers. metal runs in supervisor state with
// DAT off and all interrupts masked, each request to completion on one kernel stack; the loader
// runs in problem state with DAT on.
//
// Files without the _s390x suffix are pure Go and are tested on the host.
package metal
