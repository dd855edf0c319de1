// Counting the packets of a pcap stream as it passes (what `qnet capture` wrote), without holding it: the 24-byte
// file header, then records of a 16-byte header (its captured length at offset 8) and that many bytes.

/** Counts records of a pcap byte stream fed in chunks of any size. */
export class PcapCounter {
  packets = 0;
  private header = 0; // bytes of the file header still to skip
  private little = true;
  private pending: Buffer = Buffer.alloc(0);
  private skip = 0; // bytes of the current record's data still to pass

  constructor() {
    this.header = 24;
  }

  /** Feeds the next chunk of the stream. */
  push(chunk: Buffer): void {
    let buf: Buffer = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = Buffer.alloc(0);
    if (this.header > 0) {
      if (this.header === 24 && buf.length >= 4) {
        const magic = buf.readUInt32LE(0);
        // a1b2c3d4 (µs) or a1b23c4d (ns), in this host's order or swapped
        this.little = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
      } else if (this.header === 24) {
        this.pending = buf;
        return;
      }
      const n = Math.min(this.header, buf.length);
      this.header -= n;
      buf = buf.subarray(n);
    }
    while (buf.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, buf.length);
        this.skip -= n;
        buf = buf.subarray(n);
        continue;
      }
      if (buf.length < 16) {
        this.pending = Buffer.from(buf);
        return;
      }
      this.skip = this.little ? buf.readUInt32LE(8) : buf.readUInt32BE(8);
      this.packets++;
      buf = buf.subarray(16);
    }
  }
}
