// swift-tools-version:6.1
// meshd: an istiod-class service-mesh control plane. See docs/ARCHITECTURE.md for how the modules fit.
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let grpcCore = Target.Dependency.product(name: "GRPCCore", package: "grpc-swift-2")
let grpcProtobuf = Target.Dependency.product(name: "GRPCProtobuf", package: "grpc-swift-protobuf")
let grpcHTTP2 = Target.Dependency.product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport")
let protobuf = Target.Dependency.product(name: "SwiftProtobuf", package: "swift-protobuf")
let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
let metrics = Target.Dependency.product(name: "Metrics", package: "swift-metrics")
let metricsTestKit = Target.Dependency.product(name: "MetricsTestKit", package: "swift-metrics")
let yams = Target.Dependency.product(name: "Yams", package: "Yams")
let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")
let hummingbird = Target.Dependency.product(name: "Hummingbird", package: "hummingbird")
let lifecycle = Target.Dependency.product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let unixSignals = Target.Dependency.product(name: "UnixSignals", package: "swift-service-lifecycle")
let prometheus = Target.Dependency.product(name: "Prometheus", package: "swift-prometheus")
let nioCore = Target.Dependency.product(name: "NIOCore", package: "swift-nio")
let nioPosix = Target.Dependency.product(name: "NIOPosix", package: "swift-nio")
let nioHTTP1 = Target.Dependency.product(name: "NIOHTTP1", package: "swift-nio")
let nioSSL = Target.Dependency.product(name: "NIOSSL", package: "swift-nio-ssl")
let nioTLS = Target.Dependency.product(name: "NIOTLS", package: "swift-nio")
let x509 = Target.Dependency.product(name: "X509", package: "swift-certificates")
let asn1 = Target.Dependency.product(name: "SwiftASN1", package: "swift-asn1")
let crypto = Target.Dependency.product(name: "Crypto", package: "swift-crypto")
let cryptoExtras = Target.Dependency.product(name: "_CryptoExtras", package: "swift-crypto")
let grdb = Target.Dependency.product(name: "GRDB", package: "GRDB.swift")

let package = Package(
    name: "meshd",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "meshd", targets: ["meshd"]),
        .executable(name: "meshctl", targets: ["meshctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf.git", exact: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", exact: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", exact: "2.4.1"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", exact: "2.9.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
    ],
    targets: [
        // Generated Envoy v3 API and the Istio CA service, plus small hand-written helpers.
        .target(
            name: "EnvoyAPI",
            dependencies: [protobuf, grpcCore, grpcProtobuf],
            exclude: ["Generated/README.txt"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .target(name: "MeshModel", swiftSettings: strict),
        // The sidecar launcher behind `meshctl proxy run`: Envoy's command line, restarts, drain on exit.
        .target(name: "ProxyAgent", swiftSettings: strict),
        .target(name: "MeshConfig", dependencies: ["MeshModel", yams, grdb, logging, metrics], swiftSettings: strict),
        .target(name: "MeshTranslation", dependencies: ["MeshModel", "EnvoyAPI", "XDSCache", protobuf], swiftSettings: strict),
        .target(name: "XDSCache", dependencies: ["EnvoyAPI", protobuf], swiftSettings: strict),
        .target(
            name: "XDSServer",
            dependencies: ["EnvoyAPI", protobuf, grpcCore, grpcProtobuf, logging, metrics],
            swiftSettings: strict
        ),
        .target(
            name: "CertificateAuthority",
            dependencies: ["MeshModel", x509, asn1, crypto, cryptoExtras, logging, metrics],
            swiftSettings: strict
        ),
        .target(
            name: "AdminAPI",
            dependencies: ["MeshModel", "MeshConfig", "MeshTranslation", "CertificateAuthority", "MeshClient", hummingbird, logging],
            resources: [.embedInCode("openapi.json")],
            swiftSettings: strict
        ),
        .target(
            name: "MeshClient",
            dependencies: ["MeshModel", "EnvoyAPI", "CertificateAuthority", x509, asn1, grpcCore, grpcHTTP2],
            swiftSettings: strict
        ),
        .target(
            name: "ControlPlane",
            dependencies: [
                "MeshModel", "MeshConfig", "MeshTranslation", "XDSCache", "XDSServer", "AdminAPI", "EnvoyAPI", "MeshClient",
                "CertificateAuthority", x509, asn1, crypto, nioCore, nioPosix, nioHTTP1, nioSSL, nioTLS,
                grpcCore, grpcHTTP2, logging, metrics, prometheus, lifecycle, unixSignals, hummingbird, protobuf,
            ],
            resources: [.embedInCode("ExampleMesh")],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "meshd", dependencies: ["ControlPlane", "MeshModel", "MeshConfig", "CertificateAuthority", argumentParser, logging],
            swiftSettings: strict),
        .executableTarget(
            name: "meshctl",
            dependencies: [
                "MeshClient", "MeshModel", "MeshConfig", "MeshTranslation", "CertificateAuthority", "ProxyAgent", "EnvoyAPI", argumentParser, yams,
                protobuf,
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "meshd-loadgen",
            dependencies: [
                "XDSTesting", "EnvoyAPI", "MeshModel", "MeshConfig", "MeshTranslation", "CertificateAuthority", "ControlPlane", argumentParser, grpcCore,
                protobuf, logging, metrics, x509,
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // Fuzz targets: libFuzzer when built by scripts/fuzz.sh (-sanitize=fuzzer -DFUZZING), else a
        // replay of inputs (the committed corpus runs in the test suite).
        .target(name: "CLibFuzzer"),
        .executableTarget(
            name: "meshd-fuzz",
            dependencies: ["CLibFuzzer", "MeshConfig", "MeshModel", "CertificateAuthority", "XDSServer", "XDSCache", "EnvoyAPI", protobuf],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(name: "meshd-test-helper", dependencies: ["CertificateAuthority"], swiftSettings: [.swiftLanguageMode(.v6)]),
        .target(
            name: "XDSTesting",
            dependencies: [
                "EnvoyAPI", "MeshModel", "MeshClient", "CertificateAuthority", "ProxyAgent", protobuf, grpcCore, grpcHTTP2,
                nioCore, nioPosix, nioHTTP1, nioSSL, logging, x509,
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "MeshModelTests", dependencies: ["MeshModel"], swiftSettings: strict),
        .testTarget(
            name: "AdminAPITests",
            dependencies: ["AdminAPI", "MeshClient", "MeshModel", "MeshConfig", "MeshTranslation", "CertificateAuthority", hummingbird, .product(name: "HummingbirdTesting", package: "hummingbird")],
            swiftSettings: strict),
        .testTarget(name: "ProxyAgentTests", dependencies: ["ProxyAgent"], swiftSettings: strict),
        .testTarget(
            name: "MeshConfigTests", dependencies: ["MeshConfig", "MeshModel", logging, metrics, metricsTestKit],
            swiftSettings: strict),
        .testTarget(
            name: "MeshTranslationTests",
            dependencies: ["MeshTranslation", "MeshConfig", "MeshModel", "EnvoyAPI", "XDSTesting", protobuf],
            exclude: ["Golden"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "XDSServerTests",
            dependencies: ["XDSServer", "XDSCache", "EnvoyAPI", "XDSTesting", protobuf, grpcCore],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CertificateAuthorityTests",
            dependencies: ["CertificateAuthority", "MeshModel", "XDSTesting", x509, asn1, crypto, cryptoExtras, logging, metrics, metricsTestKit],
            swiftSettings: strict
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "ControlPlane", "XDSTesting", "MeshConfig", "MeshModel", "MeshTranslation", "EnvoyAPI", "CertificateAuthority", protobuf, grpcCore, grpcHTTP2, logging,
                metrics, x509, asn1, crypto,
            ],
            swiftSettings: strict
        ),
    ]
)
