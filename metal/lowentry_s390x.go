package metal

// lowentry is the image's entry point in low memory; the linker copies its code to
// LowEntryBase and fills in its parameter block (lowentry.go). It is never called from Go.
//
// implemented in lowentry_s390x.s
func lowentry()
