//go:build !metalkernelbug

package metal

// selfTest is empty in real images; metal/qemu_test.go builds metal with -tags metalkernelbug
// to get a deliberate kernel bug and check the dump.
func selfTest() {}
