package metal

import "encoding/binary"

// A minimal vDSO: one page holding an ELF shared object that exports __kernel_clock_gettime,
// which the Go runtime finds through AT_SYSINFO_EHDR (runtime/vdso_linux.go: PT_LOAD,
// PT_DYNAMIC, DT_HASH, DT_SYMTAB, DT_STRTAB; no version table, so no version check). With it
// time.Now() and nanotime read the TOD clock in problem state (STCKF is unprivileged) instead of
// making two system calls. Clocks other than REALTIME/MONOTONIC/MONOTONIC_RAW/BOOTTIME fall
// back to svc clock_gettime inside the vDSO.
//
// The code follows the s390x ELF ABI (R2 = clock id, R3 = struct timespec *, result in R2;
// uses only the volatile R0, R1, R4, R5). It was assembled with GNU as from this source,
// which vdso_test.go re-assembles and compares when binutils-s390x-linux-gnu is installed:
//
//	__kernel_clock_gettime:
//		stckf	0(%r3)            // TOD into ts (scratch)
//		lg	%r1,0(%r3)
//		larl	%r4,data
//		cghi	%r2,0             // CLOCK_REALTIME
//		je	.Lreal
//		cghi	%r2,1             // CLOCK_MONOTONIC
//		je	.Lmono
//		cghi	%r2,4             // CLOCK_MONOTONIC_RAW
//		je	.Lmono
//		cghi	%r2,7             // CLOCK_BOOTTIME
//		je	.Lmono
//		lghi	%r1,260           // anything else: svc clock_gettime
//		svc	0
//		br	%r14
//	.Lreal:	sg	%r1,8(%r4)        // - TOD of 1970-01-01
//		j	.Lconv
//	.Lmono:	sg	%r1,0(%r4)        // - TOD at boot
//	.Lconv:	lgr	%r0,%r1           // ns = (tod>>9)*125 + ((tod&511)*125)>>9
//		srlg	%r0,%r0,9
//		mghi	%r0,125
//		sllg	%r1,%r1,55
//		srlg	%r1,%r1,55
//		mghi	%r1,125
//		srlg	%r1,%r1,9
//		agr	%r0,%r1
//		lghi	%r4,0             // r4:r5 = ns; divide by 1e9
//		lgr	%r5,%r0
//		lgfi	%r1,1000000000
//		dlgr	%r4,%r1           // r5 = seconds, r4 = nanoseconds
//		stg	%r5,0(%r3)
//		stg	%r4,8(%r3)
//		lghi	%r2,0
//		br	%r14
//		.align 8
//	data:	.quad boot_tod, tod_epoch_1970
var vdsoCode = [...]byte{
	0xb2, 0x7c, 0x30, 0x00,
	0xe3, 0x10, 0x30, 0x00, 0x00, 0x04,
	0xc0, 0x40, 0x00, 0x00, 0x00, 0x47,
	0xa7, 0x2f, 0x00, 0x00,
	0xa7, 0x84, 0x00, 0x12,
	0xa7, 0x2f, 0x00, 0x01,
	0xa7, 0x84, 0x00, 0x13,
	0xa7, 0x2f, 0x00, 0x04,
	0xa7, 0x84, 0x00, 0x0f,
	0xa7, 0x2f, 0x00, 0x07,
	0xa7, 0x84, 0x00, 0x0b,
	0xa7, 0x19, 0x01, 0x04,
	0x0a, 0x00,
	0x07, 0xfe,
	0xe3, 0x10, 0x40, 0x08, 0x00, 0x09,
	0xa7, 0xf4, 0x00, 0x05,
	0xe3, 0x10, 0x40, 0x00, 0x00, 0x09,
	0xb9, 0x04, 0x00, 0x01,
	0xeb, 0x00, 0x00, 0x09, 0x00, 0x0c,
	0xa7, 0x0d, 0x00, 0x7d,
	0xeb, 0x11, 0x00, 0x37, 0x00, 0x0d,
	0xeb, 0x11, 0x00, 0x37, 0x00, 0x0c,
	0xa7, 0x1d, 0x00, 0x7d,
	0xeb, 0x11, 0x00, 0x09, 0x00, 0x0c,
	0xb9, 0x08, 0x00, 0x01,
	0xa7, 0x49, 0x00, 0x00,
	0xb9, 0x04, 0x00, 0x50,
	0xc0, 0x11, 0x3b, 0x9a, 0xca, 0x00,
	0xb9, 0x87, 0x00, 0x41,
	0xe3, 0x50, 0x30, 0x00, 0x00, 0x24,
	0xe3, 0x40, 0x30, 0x08, 0x00, 0x24,
	0xa7, 0x29, 0x00, 0x00,
	0x07, 0xfe,
	0x07, 0x07, 0x07, 0x07, // padding to the 8-aligned data
}

// Layout of the vDSO page.
const (
	vdsoPhdrOff   = 64
	vdsoDynOff    = 176 // 9 dynamic entries
	vdsoDynCount  = 9
	vdsoHashOff   = 320 // nbucket, nchain, bucket[1], chain[2]
	vdsoVersymOff = 340 // u16 per symbol
	vdsoSymOff    = 344 // 2 symbols
	vdsoVerdefOff = 392 // base definition + LINUX_2.6.29, each with one aux
	vdsoStrOff    = 448
	vdsoCodeOff   = 512
	vdsoDataOff   = vdsoCodeOff + len(vdsoCode) // boot TOD, then the 1970 epoch
	vdsoBase      = 0x7fffff100000              // where the loader sees it (above the initial stack)
	// vdsoSigreturnOff holds "svc 173" (rt_sigreturn), where a signal handler without SA_RESTORER
	// returns to (as Linux's vDSO __kernel_rt_sigreturn). Returning through an instruction written
	// into the signal frame makes QEMU's TCG translate code from a stack page, after which every
	// store to that page takes TCG's slow self-modifying-code path (suspected cause of HTTP boots
	// stuck at ~20 MB/s instead of ~95 in 1 of 20-60 runs; docs/metal.md).
	vdsoSigreturnOff = pageSize - 8
	atSysinfoEhdr    = 33

	// dynstr: "\0__kernel_clock_gettime\0LINUX_2.6.29\0linux-vdso.so.1\0"
	vdsoStrings    = "\x00__kernel_clock_gettime\x00LINUX_2.6.29\x00linux-vdso.so.1\x00"
	vdsoNameSym    = 1
	vdsoNameVer    = 24
	vdsoNameSoname = 37
	vdsoVerHash    = 0x75fcbb9 // ELF hash of "LINUX_2.6.29" (runtime/vdso_linux_s390x.go)
)

// buildVDSO writes the vDSO into page (4096 bytes).
func buildVDSO(page []byte, bootTOD uint64) {
	clear(page)
	be := binary.BigEndian
	copy(page, "\x7fELF\x02\x02\x01")
	be.PutUint16(page[16:], 3)  // ET_DYN
	be.PutUint16(page[18:], 22) // EM_S390
	be.PutUint32(page[20:], 1)  // EV_CURRENT
	be.PutUint64(page[32:], vdsoPhdrOff)
	be.PutUint16(page[52:], 64) // e_ehsize
	be.PutUint16(page[54:], 56) // e_phentsize
	be.PutUint16(page[56:], 2)  // e_phnum
	be.PutUint16(page[58:], 64) // e_shentsize
	// PT_LOAD covering the page, R+X
	ph := page[vdsoPhdrOff:]
	be.PutUint32(ph[0:], 1)
	be.PutUint32(ph[4:], 5)
	be.PutUint64(ph[32:], pageSize)
	be.PutUint64(ph[40:], pageSize)
	be.PutUint64(ph[48:], pageSize)
	// PT_DYNAMIC
	ph = page[vdsoPhdrOff+56:]
	be.PutUint32(ph[0:], 2)
	be.PutUint32(ph[4:], 4)
	be.PutUint64(ph[8:], vdsoDynOff)
	be.PutUint64(ph[16:], vdsoDynOff)
	be.PutUint64(ph[24:], vdsoDynOff)
	be.PutUint64(ph[32:], vdsoDynCount*16)
	be.PutUint64(ph[40:], vdsoDynCount*16)
	be.PutUint64(ph[48:], 8)
	dyn := [2 * vdsoDynCount]uint64{
		4, vdsoHashOff, // DT_HASH
		5, vdsoStrOff, // DT_STRTAB
		6, vdsoSymOff, // DT_SYMTAB
		10, uint64(len(vdsoStrings)), // DT_STRSZ
		11, 24, // DT_SYMENT
		0x6ffffff0, vdsoVersymOff, // DT_VERSYM
		0x6ffffffc, vdsoVerdefOff, // DT_VERDEF
		0x6ffffffd, 2, // DT_VERDEFNUM
		0, 0, // DT_NULL
	}
	for i, v := range dyn {
		be.PutUint64(page[vdsoDynOff+8*i:], v)
	}
	// DT_HASH: nbucket 1, nchain 2, bucket[0] = 1, chain = {0, 0}
	for i, v := range [...]uint32{1, 2, 1, 0, 0} {
		be.PutUint32(page[vdsoHashOff+4*i:], v)
	}
	be.PutUint16(page[vdsoVersymOff+2:], 2) // symbol 1 has version index 2 (LINUX_2.6.29)
	// symbol 1: global function
	s := page[vdsoSymOff+24:]
	be.PutUint32(s[0:], vdsoNameSym)
	s[4] = 1<<4 | 2        // STB_GLOBAL, STT_FUNC
	be.PutUint16(s[6:], 1) // defined (any section index but SHN_UNDEF)
	be.PutUint64(s[8:], vdsoCodeOff)
	be.PutUint64(s[16:], uint64(len(vdsoCode)))
	// version definitions: {version, flags, ndx, cnt, hash, aux, next} + {name, next}
	v := page[vdsoVerdefOff:]
	be.PutUint16(v[0:], 1)
	be.PutUint16(v[2:], 1) // VER_FLG_BASE
	be.PutUint16(v[4:], 1)
	be.PutUint16(v[6:], 1)
	be.PutUint32(v[12:], 20)
	be.PutUint32(v[16:], 28)
	be.PutUint32(v[20:], vdsoNameSoname)
	v = v[28:]
	be.PutUint16(v[0:], 1)
	be.PutUint16(v[4:], 2)
	be.PutUint16(v[6:], 1)
	be.PutUint32(v[8:], vdsoVerHash)
	be.PutUint32(v[12:], 20)
	be.PutUint32(v[20:], vdsoNameVer)
	copy(page[vdsoStrOff:], vdsoStrings)
	copy(page[vdsoCodeOff:], vdsoCode[:])
	be.PutUint16(page[vdsoSigreturnOff:], svcRtSigreturn)
	be.PutUint64(page[vdsoDataOff:], bootTOD)
	be.PutUint64(page[vdsoDataOff+8:], todEpoch1970)
}
