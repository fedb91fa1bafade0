internal import Foundation
public import MeshModel

/// One plaintext HTTP/1.1 connection kept open across requests (blocking POSIX socket with
/// timeouts), to see what happens to a connection opened before a configuration change.
public final class KeepAliveConnection {
    private let fd: Int32
    private var buffer = [UInt8]()
    /// Whether the peer has closed it (or it failed).
    public private(set) var isClosed = false
    /// Requests answered on it.
    public private(set) var requests = 0

    /// Connects to an IPv4 `address`; reads wait at most `timeout`.
    public init(_ address: HostPort, timeout: Duration = .seconds(5)) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HTTPProbe.Failure(description: "socket: \(errno)") }
        var tv = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: Int(timeout.components.attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = in_port_t(UInt16(address.port).bigEndian)
        inet_pton(AF_INET, address.host, &sin.sin_addr)
        let result = withUnsafePointer(to: &sin) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            close(fd)
            throw HTTPProbe.Failure(description: "cannot connect to \(address): errno \(errno)")
        }
    }

    deinit { close(fd) }

    /// Sends a GET and reads the response (Content-Length bodies only); `nil` if the connection
    /// was closed before a whole response arrived.
    public func get(_ path: String, authority: String, headers: [(String, String)] = []) -> HTTPProbe.Response? {
        guard !isClosed else { return nil }
        let extra = headers.map { "\($0.0): \($0.1)\r\n" }.joined()
        let request = Array("GET \(path) HTTP/1.1\r\nhost: \(authority)\r\n\(extra)\r\n".utf8)
        guard request.withUnsafeBufferPointer({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else {
            isClosed = true
            return nil
        }
        while true {
            if let response = parse() {
                requests += 1
                if response.headers["connection"]?.lowercased() == "close" { isClosed = true }
                return response
            }
            guard fill() else { return nil }
        }
    }

    /// Waits up to `timeout` for the peer to close an idle connection; `true` if it did.
    public func waitForClose(timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !isClosed && ContinuousClock.now < deadline {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&poller, 1, 50) > 0 { _ = fill() }
        }
        return isClosed
    }

    /// Reads what is there; `false` once the connection is closed.
    private func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 16_384)
        let count = chunk.withUnsafeMutableBufferPointer { recv(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else {
            isClosed = true
            return false
        }
        buffer += chunk[0..<count]
        return true
    }

    private func parse() -> HTTPProbe.Response? {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = (0..<max(0, buffer.count - 3)).first(where: { Array(buffer[$0..<$0 + 4]) == separator }) else { return nil }
        let head = String(decoding: buffer[0..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let status = Int(head.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let length = Int(headers["content-length"] ?? "0") ?? 0
        guard buffer.count >= end + 4 + length else { return nil }
        let body = String(decoding: buffer[(end + 4)..<(end + 4 + length)], as: UTF8.self)
        buffer.removeFirst(end + 4 + length)
        return HTTPProbe.Response(status: status, headers: headers, body: body)
    }
}
