package metal

// Declarations of the routines implemented in entry_s390x.s.

func kentry()
func svcEntry()
func extEntry()
func ioEntry()
func pgmEntry()
func mcckEntry()
func restartEntry()

// resume continues the thread at curTCB in problem state. Never returns.
func resume()

// idleWait enters an enabled wait; the next interruption's handler takes over. Never returns.
func idleWait()

// disabledWait stops the CPU with a disabled-wait PSW whose address is code. Never returns.
func disabledWait(code uint64)

// sigpStopSelf stops this CPU (QEMU then exits 0). Never returns.
func sigpStopSelf()

func servc(cmd uint32, sccb uintptr) cc
func stckf() uint64
func setClockComparator(v uint64)
func loadASCE(asce uint64)
func setCR6(mask uint64)
func kexecJump(tramp, plan uintptr, schid uint32, viaStub uint64)
func ptlb()
func stfle(buf uintptr)
func prno(fc uint64, param, buf, n uintptr)
func diag308(subcode uint64, addr uintptr) (rc uint64)
func stsi(buf uintptr, fc, sel1, sel2 uint64) cc

// cc is the condition code an instruction set (PoP 4.1.1, PSW bits 18-19).
type cc uint8
