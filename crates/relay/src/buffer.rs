//! Bounded first-in, first-out queue of frames waiting for the cloud.

use std::collections::VecDeque;

/// Queue of whole frames bounded by frame count and total bytes. When a new frame does
/// not fit, the oldest frames are dropped: the device retransmits anything the cloud has
/// not acknowledged, and newer readings are worth more than older ones.
#[derive(Debug)]
pub(crate) struct FrameBuffer {
    frames: VecDeque<Vec<u8>>,
    bytes: usize,
    max_frames: usize,
    max_bytes: usize,
}

impl FrameBuffer {
    /// Creates an empty buffer. The caller guarantees `max_frames >= 1` and
    /// `max_bytes >= MAX_FRAME_LEN`, so every valid frame fits into an empty buffer.
    pub(crate) fn new(max_frames: usize, max_bytes: usize) -> Self {
        FrameBuffer {
            frames: VecDeque::new(),
            bytes: 0,
            max_frames,
            max_bytes,
        }
    }

    /// Appends `frame`, dropping the oldest frames until it fits, and returns the number
    /// of frames dropped.
    pub(crate) fn push(&mut self, frame: Vec<u8>) -> u64 {
        let mut dropped = 0;
        while !self.frames.is_empty()
            && (self.frames.len() >= self.max_frames || self.bytes + frame.len() > self.max_bytes)
        {
            self.pop_front();
            dropped += 1;
        }
        self.bytes += frame.len();
        self.frames.push_back(frame);
        dropped
    }

    pub(crate) fn front(&self) -> Option<&[u8]> {
        self.frames.front().map(Vec::as_slice)
    }

    pub(crate) fn pop_front(&mut self) -> Option<Vec<u8>> {
        let frame = self.frames.pop_front()?;
        self.bytes -= frame.len();
        Some(frame)
    }

    pub(crate) fn len(&self) -> usize {
        self.frames.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn snapshot(&self) -> Vec<Vec<u8>> {
        self.frames.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_limit_drops_oldest() {
        let mut buffer = FrameBuffer::new(2, 1000);
        assert_eq!(buffer.push(vec![1]), 0);
        assert_eq!(buffer.push(vec![2]), 0);
        assert_eq!(buffer.push(vec![3]), 1);
        assert_eq!(buffer.snapshot(), vec![vec![2], vec![3]]);
        assert_eq!(buffer.bytes(), 2);
    }

    #[test]
    fn byte_limit_drops_oldest() {
        let mut buffer = FrameBuffer::new(100, 10);
        buffer.push(vec![1; 4]);
        buffer.push(vec![2; 4]);
        assert_eq!(buffer.push(vec![3; 6]), 1);
        assert_eq!(buffer.snapshot(), vec![vec![2; 4], vec![3; 6]]);
        assert_eq!(buffer.bytes(), 10);
    }

    #[test]
    fn pop_keeps_byte_count() {
        let mut buffer = FrameBuffer::new(10, 100);
        buffer.push(vec![1; 3]);
        buffer.push(vec![2; 5]);
        assert_eq!(buffer.front(), Some(&[1u8; 3][..]));
        assert_eq!(buffer.pop_front(), Some(vec![1; 3]));
        assert_eq!(buffer.bytes(), 5);
        assert_eq!(buffer.len(), 1);
    }
}
