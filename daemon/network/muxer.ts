import type { YamuxMuxerInit } from '@libp2p/yamux'

/** Largest receive window a yamux stream grows to (yamux's own default). */
export const MAX_STREAM_WINDOW_BYTES = 16 * 1024 * 1024

/**
 * Yamux settings for every connection. A stream whose reader paused (the block protocol does
 * while its disk writes catch up) buffers whatever the peer may still send under the window it
 * was granted, which is up to the largest window. Yamux's default read buffer limit is 4 MiB,
 * smaller than its default largest window, so a paused stream with a grown window was aborted
 * mid-transfer; the limit here is the window, which the peer cannot exceed without yamux itself
 * rejecting the frame.
 */
export const yamuxOptions: YamuxMuxerInit = {
  streamOptions: {
    maxStreamWindowSize: MAX_STREAM_WINDOW_BYTES,
    maxReadBufferLength: MAX_STREAM_WINDOW_BYTES
  }
}
