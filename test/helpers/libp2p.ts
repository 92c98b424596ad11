import { createHash } from 'node:crypto'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { Stream } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { noise, type ICryptoInterface } from '@libp2p/noise'
import { yamux, type YamuxMuxerInit } from '@libp2p/yamux'
import { yamuxOptions } from '../../daemon/network/muxer.js'
import { noiseCrypto } from '../../daemon/network/noise-crypto.js'

/**
 * Two libp2p nodes listening on loopback TCP with the daemon's encryption and muxer settings (plus
 * `streamOptions` overrides; `firstCrypto` replaces the first node's noise crypto).
 */
export async function libp2pPair (streamOptions: YamuxMuxerInit['streamOptions'] = {}, firstCrypto: ICryptoInterface = noiseCrypto): Promise<[Libp2p, Libp2p]> {
  const opts = { ...yamuxOptions, streamOptions: { ...yamuxOptions.streamOptions, ...streamOptions } }
  const make = async (crypto: ICryptoInterface): Promise<Libp2p> => await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise({ crypto })],
    streamMuxers: [yamux(opts)]
  })
  return [await make(firstCrypto), await make(noiseCrypto)]
}

/** Everything `stream` delivers until it ends: byte count and SHA-256 (hex). Listens from now on; resume a paused stream after calling this. */
export async function drainStream (stream: Stream): Promise<{ bytes: number, sha256: string }> {
  const hash = createHash('sha256')
  let bytes = 0
  stream.addEventListener('message', (evt) => {
    for (const b of evt.data instanceof Uint8Array ? [evt.data] : evt.data) { hash.update(b); bytes += b.byteLength }
  })
  await new Promise<void>(resolve => { stream.addEventListener('end', () => { resolve() }) })
  return { bytes, sha256: hash.digest('hex') }
}
