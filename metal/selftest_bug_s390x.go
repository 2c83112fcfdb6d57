//go:build metalkernelbug

package metal

// selfTest commits a kernel bug on purpose (an index out of range) so metal/qemu_test.go can
// check that it ends in the dump and a disabled wait. Only built with -tags metalkernelbug.
//
//go:noinline
func selfTest() {
	var a [2]uint64
	i := int(ramSize>>50) + 3
	kprintDec(a[i])
}
