"""Live payment updates: Server-Sent Events, Socket.IO, and the bus that fans events out.

    hub.py       Realtime: the database's after-commit listener; rings the bus, queues socket emits
    bus.py       MemoryBus (one instance) and RedisBus (every instance): "an event committed here"
    sse.py       EventStream: reads the events table in commit order; resumable with Last-Event-ID
    socketio.py  SocketGateway (the /socket.io server, rooms per tenant and per payment) and the
                 write-only RedisSocketEmitter used by processes without a Socket.IO server

Nothing is announced before its transaction commits, and nothing reaches a client that may not
see it: a stream reads only its scope, a socket sits only in the rooms its credentials open.
"""
