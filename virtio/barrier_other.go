//go:build !s390x

package virtio

// On the host the device is the in-process fake, which runs synchronously on the caller's
// goroutine, so the ring needs no hardware ordering.

func storeBarrier() {}
func loadBarrier()  {}
func fullBarrier()  {}
