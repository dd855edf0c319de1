// The NIC models a topology may name (apart from the schema, so that renderers need not load zod).

/** NIC models a topology may name, mapped to the QEMU device and the guest kernel module that drives it. */
export const NIC_MODELS = {
  virtio: { device: 'virtio-net-pci', module: 'virtio_net' },
  e1000: { device: 'e1000', module: 'e1000' },
  e1000e: { device: 'e1000e', module: 'e1000e' },
  rtl8139: { device: 'rtl8139', module: '8139too' },
  pcnet: { device: 'pcnet', module: 'pcnet32' },
  vmxnet3: { device: 'vmxnet3', module: 'vmxnet3' },
} as const;
export type NicModel = keyof typeof NIC_MODELS;
