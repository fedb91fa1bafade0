// swift-tools-version:6.1
// Builds the two protoc plugins used by ../generate.sh from the package versions on this machine.
import PackageDescription

let package = Package(
    name: "MeshdProtocPlugins",
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf.git", exact: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", exact: "2.4.1"),
    ],
    targets: []
)
