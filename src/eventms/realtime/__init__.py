"""Real-time notifications over Socket.IO: `messages` says what, `server` sends it."""
