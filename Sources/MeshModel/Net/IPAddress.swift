/// An IPv4 or IPv6 address, parsed without the network stack.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(UInt32)
    case v6([UInt16])

    /// Parses dotted IPv4 (`127.0.0.2`) or IPv6 (`::1`, `fe80::1`, `::ffff:10.0.0.1`).
    public init?(_ text: some StringProtocol) {
        if let v4 = IPAddress.parseV4(Substring(text)) {
            self = .v4(v4)
        } else if let v6 = IPAddress.parseV6(Substring(text)) {
            self = .v6(v6)
        } else {
            return nil
        }
    }

    /// Whether the address is in 127.0.0.0/8 or is `::1`.
    public var isLoopback: Bool {
        switch self {
        case .v4(let bits): bits >> 24 == 127
        case .v6(let groups): groups == [0, 0, 0, 0, 0, 0, 0, 1]
        }
    }

    /// Whether this is the unspecified address (`0.0.0.0` or `::`).
    public var isUnspecified: Bool {
        switch self {
        case .v4(let bits): bits == 0
        case .v6(let groups): groups.allSatisfy { $0 == 0 }
        }
    }

    /// The address width in bits (32 or 128).
    public var bitWidth: Int {
        if case .v4 = self { return 32 }
        return 128
    }

    /// The canonical text form.
    public var description: String {
        switch self {
        case .v4(let bits):
            return [24, 16, 8, 0].map { String((bits >> UInt32($0)) & 0xff) }.joined(separator: ".")
        case .v6(let groups):
            // Compress the longest run of zero groups (length >= 2).
            var bestStart = -1, bestLength = 0, index = 0
            while index < 8 {
                if groups[index] == 0 {
                    var end = index
                    while end < 8 && groups[end] == 0 { end += 1 }
                    if end - index > bestLength && end - index >= 2 { bestStart = index; bestLength = end - index }
                    index = end
                } else {
                    index += 1
                }
            }
            let hex = groups.map { String($0, radix: 16) }
            if bestStart < 0 { return hex.joined(separator: ":") }
            let head = hex[..<bestStart].joined(separator: ":")
            let tail = hex[(bestStart + bestLength)...].joined(separator: ":")
            return head + "::" + tail
        }
    }

    static func parseV4(_ text: Substring) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bits: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let value = UInt32(part), value <= 255 else { return nil }
            bits = bits << 8 | value
        }
        return bits
    }

    static func parseV6(_ text: Substring) -> [UInt16]? {
        guard text.contains(":") else { return nil }
        var groups: [UInt16] = []
        var head = text
        var tailGroups: [UInt16]? = nil
        if let range = text.firstRange(of: "::") {
            head = text[..<range.lowerBound]
            let tail = text[range.upperBound...]
            guard !tail.contains("::") else { return nil }
            guard let parsedTail = parseGroups(tail) else { return nil }
            tailGroups = parsedTail
        }
        guard let parsedHead = parseGroups(head) else { return nil }
        groups = parsedHead
        if let tailGroups {
            let missing = 8 - groups.count - tailGroups.count
            guard missing >= 1 else { return nil }
            groups += Array(repeating: 0, count: missing) + tailGroups
        }
        return groups.count == 8 ? groups : nil
    }

    private static func parseGroups(_ text: Substring) -> [UInt16]? {
        if text.isEmpty { return [] }
        var groups: [UInt16] = []
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        for (index, part) in parts.enumerated() {
            if index == parts.count - 1, part.contains("."), let v4 = parseV4(part) {
                groups.append(UInt16(v4 >> 16))
                groups.append(UInt16(v4 & 0xffff))
                continue
            }
            guard !part.isEmpty, part.count <= 4, let value = UInt16(part, radix: 16) else { return nil }
            groups.append(value)
        }
        return groups
    }
}

/// An address block in CIDR form (`10.0.0.0/8`); a bare address is a block of one.
public struct CIDRBlock: Hashable, Sendable, CustomStringConvertible {
    /// The address as written.
    public var address: IPAddress
    /// The prefix length.
    public var prefixLength: Int

    /// Parses `address[/prefix]`.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(parts[0]) else { return nil }
        self.address = address
        if parts.count == 2 {
            guard let length = Int(parts[1]), length >= 0, length <= address.bitWidth else { return nil }
            prefixLength = length
        } else {
            prefixLength = address.bitWidth
        }
    }

    public var description: String { "\(address)/\(prefixLength)" }
}

/// `host:port` or `[v6]:port` endpoints as Istio writes them (Sidecar `defaultEndpoint`).
public struct HostPort: Hashable, Sendable, CustomStringConvertible {
    /// The host part (an address for meshd's uses).
    public var host: String
    /// The port.
    public var port: UInt32

    /// A host and port.
    public init(host: String, port: UInt32) {
        self.host = host
        self.port = port
    }

    /// Parses `127.0.0.1:8080` or `[::1]:8080`; port 0 (any free port) only when `allowZeroPort`.
    public init?(_ text: String, allowZeroPort: Bool = false) {
        let hostPart: Substring, portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portPart = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
        }
        guard !hostPart.isEmpty, let port = UInt32(portPart), port > 0 || allowZeroPort, port <= 65535 else { return nil }
        host = String(hostPart)
        self.port = port
    }

    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
