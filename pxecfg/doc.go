// Package pxecfg decides what a network IPL boots: it computes the PXELINUX config lookup
// order from DHCP facts, reads pxelinux.cfg files, .INS files and minimal iPXE scripts, selects
// an entry (LOADPARM, DEFAULT, MENU DEFAULT, ONTIMEOUT) and returns a pure [Boot] value: kernel
// and initrd locations, in order, the final command line (with SYSAPPEND/IPAPPEND) or a
// LOCALBOOT outcome. It fetches only small files, through the [Fetcher] the caller supplies,
// and never prints: [Discover] reports each fetch through [Options.Report] and returns
// [Result]; [Result.Text] renders it for `netipl explain` and the golden tests.
//
// # Specifications
//
// The format is PXELINUX's as documented in syslinux 6.03 doc/pxelinux.txt, doc/syslinux.txt
// and doc/menu.txt, with DHCP options 209 (configfile) and 210 (pathprefix) from RFC 5071. The
// reference behaviour to replace is QEMU's s390 netboot (pc-bios/s390-ccw/netmain.c with SLOF
// lib/libnet/pxelinux.c, QEMU 7.2 to 10.2).
//
// # Lookup ([Look])
//
// The boot file (option 67) is a TFTP name on the boot server or a URL. The current directory
// (where names resolve) is option 210, else the boot file's directory. Config names are tried
// in this order, the first that loads wins: option 209 relative to the current directory (RFC
// 5071), then 209 under the config directory (QEMU's placement); the VM UUID (lower case,
// dashed); "01-" and the MAC (lower case, dashed); the IPv4 address in upper-case hex cut from 8
// digits to 1; "default". The config directory is the current directory + "pxelinux.cfg/"; when
// option 210 is set and does not itself end in "pxelinux.cfg/", QEMU's directory (210 verbatim)
// is tried after PXELINUX's for each name. Names: a URL (tftp://, http://, https://) stands as
// written, "::name" is on the same server with no prefix, "host::name" is on TFTP server host,
// "/name" is from the server root, anything else is relative to the current directory; when
// QEMU would read a name differently (verbatim from the root), [Source.Alt] carries its reading
// and the loader tries it when [Source.URL] is not found.
//
// # Boot file kinds ([Sniff])
//
// "* " first: .INS; "# pxelinux" first (any case): a config; "#!ipxe": an iPXE script; short
// text whose lines are all "name address" with one at 0: a header-less .INS (OpenShift's
// generic.ins); anything else: a kernel image for the loader. Files under [MinBootfile] bytes
// are refused; a boot file named like a PC boot program (*.0, *.efi, *.c32, *.pxe, *.kpxe:
// DHCP set up for x86 hosts) is not loaded ([ErrBootProgram]). After a boot file that is
// missing, too small, skipped or broken, the lookup runs.
//
// # Config grammar ([Load], [Parse])
//
// One directive per line, LF or CRLF, blanks trimmed; blank lines and lines starting with "#"
// are skipped; keywords in any case, labels compared exactly; no size or entry limits beyond
// memory ([ConfigLimit] bounds one file and [ConfigTotalLimit] a config with its INCLUDEs,
// against hostile servers). Directives:
//   - DEFAULT (last wins): a label with optional extra options, a module (menu.c32), or an
//     implicit kernel command line (a one-word DEFAULT naming no label in a config that has
//     labels boots the first entry, as QEMU does, rather than a file of that name); UI
//     module; LABEL name;
//   - KERNEL or LINUX file (a .c32 module, COM32, COMBOOT: reported, not bootable; BOOT, BSS,
//     PXE, FDIMAGE, CONFIG: not bootable on s390x); INITRD a,b,c (concatenated, each but the last
//     padded to [InitrdAlign], see [InitrdLayout]); APPEND global (before the first LABEL) or
//     per label, "APPEND -" for none, initrd= inside APPEND when there is no INITRD line;
//   - IPAPPEND/SYSAPPEND bits 1 (ip=client:server:gateway:netmask, IPv4 only),
//     2 (BOOTIF=01-mac), 4 (SYSUUID=uuid), global or per label;
//   - LOCALBOOT n: the [Boot.LocalBoot] outcome, "return to the firmware" (the next boot device);
//   - MENU LABEL, MENU DEFAULT, MENU HIDE, MENU TITLE, MENU INCLUDE; other MENU lines ignored;
//     TEXT HELP … ENDTEXT skipped;
//   - TIMEOUT, TOTALTIMEOUT (tenths of a second), PROMPT, ONTIMEOUT, ONERROR, SAY (kept for the loader);
//   - INCLUDE file (nested at most [MaxIncludeDepth], at most [MaxIncludes] in all, at most
//     [ConfigTotalLimit] bytes with the including config; relative to
//     the current directory, then to the including file's directory; a missing file is a note).
//
// Keywords without effect on s390x (DISPLAY, F1…F12, SERIAL, FONT, KBDMAP, …), unknown keywords
// and .c32 modules are reported once each as a [Note] and skipped. An entry without KERNEL is
// an error for that entry ([ErrNoKernel]).
//
// # Selection ([Select])
//
// LOADPARM, blanks trimmed: a number picks entry n (1-based, as QEMU 10.1; 0 = automatic; beyond
// the entries is an error), PROMPT asks for the menu, another word is a label compared without
// case. Otherwise, unattended, by syslinux rules: a menu (UI or DEFAULT naming a module) or
// PROMPT 1 with a TIMEOUT boots ONTIMEOUT; a menu boots MENU DEFAULT; then DEFAULT; with no
// usable DEFAULT, the first entry (QEMU). [Selection.Menu], [Selection.Timeout] and
// [Config.MenuItems] are what an SCLP console menu needs.
//
// # .INS files ([ParseINS], [INS.Boot])
//
// "name address" lines (at most [MaxINSLines]), address "0x"/"0X" hex or decimal; names
// relative to the .INS file's directory. The file at 0 is the kernel, the file at 0x10480 the
// parmfile (lines joined with spaces become the command line), files inside the parmarea
// 0x10400…0x1047f (initrd.addrsize, initrd.off, initrd.siz) are overlaid on it to find
// INITRD_START/INITRD_SIZE, and every other file is an initrd (the one at INITRD_START first).
//
// # QEMU's behaviours (research/qemu-netboot.md §2.5–2.8), each reproduced or improved
//
// This list is checked by TestQEMUBehaviours: each line's id and verdict must match its table.
//
//	Q01 reproduced: a boot file not ending in "/" is loaded and sniffed first.
//	Q02 reproduced: an empty boot file or one ending in "/" goes straight to the config lookup.
//	Q03 reproduced: a boot file under 8 bytes is "too small" and the lookup runs.
//	Q04 improved: files up to SniffLimit (1 MiB) are sniffed, not only those under 2047 bytes.
//	Q05 reproduced: "* " (case-sensitive) marks an .INS file, checked before the config magic.
//	Q06 reproduced: "# pxelinux" (10 bytes, any case) marks a config sent as the boot file.
//	Q07 improved: any other boot file is a kernel image, except PC boot programs (*.0, *.efi, *.c32, *.pxe, *.kpxe), which are skipped.
//	Q08 reproduced: a missing or broken boot file falls back to the config lookup.
//	Q09 improved: the fallback directory comes from the DHCP boot file, never from a failed load.
//	Q10 improved: "#!ipxe" scripts are read (kernel, initrd, boot) instead of booted as a kernel.
//	Q11 improved: a header-less .INS file (generic.ins) is recognised instead of booted as a kernel.
//	Q12 reproduced: an .INS first line "* title" is its title.
//	Q13 improved: an .INS file without a newline is read if its line is "name address".
//	Q14 improved: .INS name and address split at blanks (spaces or tabs); a line without an address is an error.
//	Q15 improved: .INS addresses take 0x or 0X for hex, else decimal; a bad number is an error, not 0.
//	Q16 improved: .INS addresses give each file its meaning; the loader places files by its own plan.
//	Q17 improved: .INS parmfile becomes the command line and parmarea files give the initrd start and size.
//	Q18 improved: .INS names resolve against the .INS file's directory, QEMU's root reading as Alt.
//	Q19 reproduced: the UUID name is the VM UUID in lower case, dashed; all zero means none.
//	Q20 improved: option 210 is the prefix of "pxelinux.cfg/" (PXELINUX) and, after it, QEMU's verbatim directory.
//	Q21 reproduced: without option 210 the config directory is the boot file's directory + "pxelinux.cfg/".
//	Q22 improved: no length limits on prefixes and names.
//	Q23 reproduced: the order is 209, UUID, 01-MAC, hex IP 8 to 1 digits (IPv4 only), default.
//	Q24 improved: option 209 is relative to the 210 prefix (RFC 5071); QEMU's placement is tried next.
//	Q25 reproduced: the MAC name is "01-" and the lower-case MAC with dashes.
//	Q26 reproduced: the IP name is upper-case hex.
//	Q27 improved: every name tried is reported with its result; any error goes on to the next name.
//	Q28 improved: configs up to ConfigLimit (1 MiB), not 2047 bytes.
//	Q29 reproduced: lines split at LF; CR, spaces and tabs trimmed at both ends.
//	Q30 reproduced: blank lines and lines starting with "#" are skipped; no inline comments.
//	Q31 reproduced: keyword and argument split at the first space or tab.
//	Q32 reproduced: a keyword without its argument is skipped with a note.
//	Q33 reproduced: keywords are case-insensitive.
//	Q34 improved: DEFAULT counts wherever it stands (the last one wins), as in syslinux.
//	Q35 reproduced: labels are compared case-sensitively.
//	Q36 improved: APPEND before the first LABEL is the global APPEND.
//	Q37 improved: the full directive list above; unknown keywords are reported once each.
//	Q38 reproduced: without a usable DEFAULT the first entry boots.
//	Q39 improved: no limit on entries (QEMU stops reading at 16 or 31).
//	Q40 improved: INITRD takes a comma list, and initrd= in APPEND works.
//	Q41 improved: an entry without KERNEL is a clear error naming the label and line.
//	Q42 improved: an entry without INITRD boots with no initrd.
//	Q43 reproduced: a numeric loadparm selects entry n, 1-based; 0 is automatic.
//	Q44 improved: a loadparm beyond the entries is an error, not a panic.
//	Q45 reproduced: loadparm PROMPT asks for the menu.
//	Q46 improved: a non-numeric loadparm selects a label by name, ignoring case.
package pxecfg
