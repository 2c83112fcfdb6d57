package virtio

// Feature bits, VIRTIO 1.2 §6 (reserved bits) and §5.1.3 (network device).
const (
	featNetMAC    = 1 << 5  // VIRTIO_NET_F_MAC: the device has a MAC address in config space
	featNetStatus = 1 << 16 // VIRTIO_NET_F_STATUS: config status field (link up) — not used
	featVersion1  = 1 << 32 // VIRTIO_F_VERSION_1: a VIRTIO 1.x device (little-endian rings, 12-byte net header)
)

// Negotiate returns the features the driver accepts from those the device offers: exactly
// VIRTIO_F_VERSION_1 and VIRTIO_NET_F_MAC, both required. Everything else (checksum and
// segmentation offloads, mergeable RX buffers, event index, control queue) is declined, so every
// frame fits one 2 KiB buffer and the net header is the fixed 12-byte virtio_net_hdr (§5.1.6).
func Negotiate(offered uint64) (uint64, Status) {
	if offered&featVersion1 == 0 {
		return 0, ErrNoVersion1
	}
	if offered&featNetMAC == 0 {
		return 0, ErrNoMAC
	}
	return featVersion1 | featNetMAC, OK
}
