package virtio

// z/Architecture orders stores after stores and loads after loads as seen by other CPUs and the
// channel subsystem (PoP 5-129, "Storage-Operand Fetch and Store References"), so only a store
// followed by a load of another location needs serialization.

func storeBarrier() {}
func loadBarrier()  {}

// fullBarrier serializes the CPU (BCR 14,0), ordering earlier stores before later loads.
//
// implemented in css_s390x.s
func fullBarrier()
