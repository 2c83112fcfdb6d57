package virtio

import "unsafe"

// Machine is the Channel of a real (or QEMU-emulated) s390x CPU in supervisor state: each method
// is one privileged instruction from css_s390x.s. The zero Machine is ready to use.
type Machine struct{}

var _ Channel = Machine{}

// implemented in css_s390x.s
func stsch(sid uint32, schib *SCHIB) CC
func msch(sid uint32, schib *SCHIB) CC
func ssch(sid uint32, orb *ORB) CC
func tsch(sid uint32, irb *IRB) CC
func chsc(area uint64) CC
func diag500(sid uint32, queue uint64, cookie int64) int64
func stckf() uint64

// Stsch implements Channel.Stsch with STORE SUBCHANNEL.
func (Machine) Stsch(sid SubchannelID, schib *SCHIB) CC { return stsch(uint32(sid), schib) }

// Msch implements Channel.Msch with MODIFY SUBCHANNEL.
func (Machine) Msch(sid SubchannelID, schib *SCHIB) CC { return msch(uint32(sid), schib) }

// Ssch implements Channel.Ssch with START SUBCHANNEL.
func (Machine) Ssch(sid SubchannelID, orb *ORB) CC { return ssch(uint32(sid), orb) }

// Tsch implements Channel.Tsch with TEST SUBCHANNEL.
func (Machine) Tsch(sid SubchannelID, irb *IRB) CC { return tsch(uint32(sid), irb) }

// Chsc implements Channel.Chsc with CHANNEL SUBSYSTEM CALL.
func (Machine) Chsc(area uint64) CC { return chsc(area) }

// Notify implements Channel.Notify with DIAGNOSE 0x500.
func (Machine) Notify(sid SubchannelID, queue uint16, cookie int64) int64 {
	return diag500(uint32(sid), uint64(queue), cookie)
}

// Now implements Channel.Now with STORE CLOCK FAST.
func (Machine) Now() uint64 { return stckf() }

// Memory implements Channel.Memory for a kernel running with DAT off, where a real address is
// also the address the kernel's own code uses. It is the driver's only conversion of a number
// into a pointer (metal's phys package is internal to metal).
func (Machine) Memory(phys uint64, n int) []byte {
	return unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(nil), uintptr(phys))), n)
}
