import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux, type YamuxMuxerInit } from '@libp2p/yamux'
import { yamuxOptions } from '../../daemon/network/muxer.js'
import { noiseCrypto } from '../../daemon/network/noise-crypto.js'

/** Two libp2p nodes listening on loopback TCP with the daemon's encryption and muxer settings (plus `streamOptions` overrides). */
export async function libp2pPair (streamOptions: YamuxMuxerInit['streamOptions'] = {}): Promise<[Libp2p, Libp2p]> {
  const opts = { ...yamuxOptions, streamOptions: { ...yamuxOptions.streamOptions, ...streamOptions } }
  const make = async (): Promise<Libp2p> => await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise({ crypto: noiseCrypto })],
    streamMuxers: [yamux(opts)]
  })
  return [await make(), await make()]
}
