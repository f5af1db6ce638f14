// swift-tools-version:6.0
// Postern: a privilege-separated mail server. Layout follows ../shared/DESIGN.md §7.
import PackageDescription

let package = Package(
    name: "Postern",
    // Postern is Linux-only (signalfd, prctl, Glibc, SCM_RIGHTS details). SwiftPM cannot name
    // Linux in `platforms`, so no platform is listed rather than one it does not run on.
    products: [
        .executable(name: "master", targets: ["master"]),
        .executable(name: "store", targets: ["store"]),
        .executable(name: "lmtpd", targets: ["lmtpd"]),
        .executable(name: "lookupd", targets: ["lookupd"]),
        .executable(name: "smtpd", targets: ["smtpd"]),
        .executable(name: "imapd", targets: ["imapd"]),
        .executable(name: "pop3d", targets: ["pop3d"]),
        .executable(name: "outbound", targets: ["outbound"]),
        .executable(name: "postern", targets: ["postern"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
    ],
    targets: [
        // C shims and system libraries
        .target(name: "CMailShims"),
        .systemLibrary(name: "CLibcap", providers: [.apt(["libcap-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CCrypt", providers: [.apt(["libcrypt-dev"])]),
        // libunbound (Debian libunbound-dev); linked by name: its .pc file requires libevent's.
        .systemLibrary(name: "CUnbound", providers: [.apt(["libunbound-dev"])]),
        // zlib (Debian zlib1g-dev): IMAP COMPRESS=DEFLATE (RFC 4978).
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),

        // Libraries
        .target(name: "MailCore", dependencies: [
            "MailSyntax",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "TOMLKit", package: "TOMLKit"),
        ]),
        .target(name: "MailSyntax"),
        .target(name: "MailModel"),
        .target(name: "IMAPProtocol", dependencies: ["MailSyntax", "MIME", "MailModel"]),
        .target(name: "MIME", dependencies: ["MailSyntax"]),
        .target(name: "POP3Protocol", dependencies: ["MailSyntax"]),
        .target(name: "SMTPProtocol", dependencies: ["MailSyntax"]),
        // Pure pieces of the outbound agent: reply parser, client session, MX order, retries, DSN, SRS.
        .target(name: "OutboundProtocol", dependencies: ["SMTPProtocol", "MailSyntax", "MIME"]),
        .target(name: "LookupProtocol"),
        .target(name: "MailIPC", dependencies: [
            "LookupProtocol", "MailSyntax", "MailModel",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .target(name: "MailPrivsep", dependencies: [
            "MailCore", "CMailShims", "CLibcap",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "MailStore", dependencies: [
            "MIME", "MailModel", "MailSyntax", "CMailShims", "CCrypt", "COpenSSL",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "GRDBSQLite", package: "GRDB.swift"),   // sqlite3_column_* on hot reads
        ]),
        .target(name: "StoreServer", dependencies: [
            "MailCore", "MailIPC", "MailStore", "MailPrivsep", "CMailShims", "LookupProtocol",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .target(name: "MailWorker", dependencies: [
            "MailCore", "MailSyntax", "MailIPC", "MailPrivsep", "CMailShims", "MailTLS",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .target(name: "CMailTLS", linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]),
        .target(name: "MailTLS", dependencies: [
            "CMailTLS",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Test support shared by test targets (fixtures, loopback servers, peers, embedded pipes).
        .target(name: "MailTesting", dependencies: [
            "MailTLS", "MailSyntax", "MailIPC", "MailStore", "StoreServer",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
        ]),
        .executableTarget(name: "tls-bench-server", dependencies: [
            "MailTLS",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .target(name: "SMTPServer", dependencies: [
            "MailCore", "MailIPC", "SMTPProtocol", "MailPrivsep", "MailWorker", "MailTLS", "SpamFilter",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .target(name: "IMAPServer", dependencies: [
            "MailCore", "MailIPC", "MailModel", "IMAPProtocol", "MIME", "MailPrivsep", "MailWorker", "MailTLS", "SpamFilter", "CZlib",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .target(name: "POP3Server", dependencies: [
            "MailCore", "MailIPC", "MailModel", "POP3Protocol", "MIME", "MailPrivsep", "MailWorker", "MailTLS",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .target(name: "OutboundServer", dependencies: [
            "MailCore", "MailIPC", "MailModel", "OutboundProtocol", "SMTPProtocol", "MailSyntax", "MIME", "MailDNS", "DKIM",
            "MailPrivsep", "MailWorker", "MailTLS",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .target(name: "LookupServer", dependencies: [
            "MailCore", "MailIPC", "LookupProtocol", "MailPrivsep", "MailWorker",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .target(name: "MasterCore", dependencies: [
            "MailCore", "MailIPC", "MailPrivsep", "CMailShims", "MailWorker", "MailTLS",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        // Outbound pieces (issue 13): DKIM signing over OpenSSL; DNS through libunbound.
        .target(name: "DKIM", dependencies: ["MailSyntax", "COpenSSL"]),
        .target(name: "MailDNS", dependencies: ["CUnbound", "MailSyntax"]),
        // rspamd over HTTP (issue 14): scanning verdicts, X-Spam-* fields, the learn queue, /stat.
        .target(name: "SpamFilter", dependencies: [
            "MailCore", "MailSyntax", "SMTPProtocol",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        .target(name: "AdminCLI", dependencies: [
            "MailCore", "MailIPC", "MailWorker", "MailTLS", "DKIM", "SpamFilter",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),

        // Executables: a short main.swift each
        .executableTarget(name: "master", dependencies: ["MasterCore"]),
        .executableTarget(name: "store", dependencies: ["StoreServer"]),
        .executableTarget(name: "lmtpd", dependencies: ["SMTPServer"]),
        .executableTarget(name: "lookupd", dependencies: ["LookupServer"]),
        .executableTarget(name: "smtpd", dependencies: ["SMTPServer"]),
        .executableTarget(name: "imapd", dependencies: ["IMAPServer"]),
        .executableTarget(name: "pop3d", dependencies: ["POP3Server"]),
        .executableTarget(name: "outbound", dependencies: ["OutboundServer"]),
        .executableTarget(name: "postern", dependencies: ["AdminCLI"]),
        .executableTarget(name: "fuzz-ipc", dependencies: ["MailIPC"]),
        // libFuzzer targets (make fuzz builds them with -sanitize=fuzzer into .build-fuzz); in the
        // regular build each replays the inputs it is given (fuzz/corpus, fuzz/regressions).
        .target(name: "FuzzSupport"),
        .executableTarget(name: "fuzz-smtp", dependencies: ["FuzzSupport", "SMTPProtocol"]),
        .executableTarget(name: "fuzz-mime", dependencies: ["FuzzSupport", "MIME"]),
        .executableTarget(name: "fuzz-lookup", dependencies: ["FuzzSupport", "LookupProtocol"]),
        .executableTarget(name: "fuzz-rpc", dependencies: ["FuzzSupport", "MailIPC"]),
        .executableTarget(name: "fuzz-imap", dependencies: ["FuzzSupport", "IMAPProtocol"]),
        .executableTarget(name: "fuzz-pop3", dependencies: ["FuzzSupport", "POP3Protocol"]),

        // Unit tests
        .testTarget(name: "MailCoreTests", dependencies: ["MailCore"]),
        .testTarget(name: "MailSyntaxTests", dependencies: ["MailSyntax"]),
        .testTarget(name: "MIMETests", dependencies: ["MIME", "MailSyntax"]),
        .testTarget(name: "SMTPProtocolTests", dependencies: ["SMTPProtocol", "MailSyntax"]),
        .testTarget(name: "LookupProtocolTests", dependencies: ["LookupProtocol"]),
        .testTarget(name: "OutboundProtocolTests", dependencies: ["OutboundProtocol", "SMTPProtocol", "MailSyntax", "MIME", "COpenSSL", "MailStore"]),
        .testTarget(name: "MailWorkerTests", dependencies: ["MailWorker", "MailIPC", "MailTesting",
                                                       .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                                                       .product(name: "NIOEmbedded", package: "swift-nio")]),
        .testTarget(name: "LookupServerTests", dependencies: ["LookupServer", "LookupProtocol", "MailCore", "MailIPC", "MailTesting", "MailWorker",
                                                         .product(name: "NIOCore", package: "swift-nio"),
                                                         .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "MailTLSTests", dependencies: [
            "MailTLS", "CMailTLS", "MailTesting",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
        ]),
        .testTarget(name: "MailIPCTests", dependencies: ["MailIPC", "MailTesting", .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                                                         .product(name: "NIOEmbedded", package: "swift-nio")]),
        .testTarget(name: "MailStoreTests", dependencies: ["MailStore", "StoreServer", "MailIPC", "LookupProtocol", "MailWorker", "MailTesting",
                                                           "OutboundServer"]),
        .testTarget(name: "MailPrivsepTests", dependencies: ["MailPrivsep"]),
        .testTarget(name: "MasterCoreTests", dependencies: [
            "MasterCore", "MailCore", "MailIPC", "MailPrivsep", "MailWorker",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "SpamFilterTests", dependencies: [
            "SpamFilter", "MailCore", "SMTPProtocol",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .testTarget(name: "OutboundServerTests", dependencies: [
            "OutboundServer", "OutboundProtocol", "SMTPProtocol", "MailModel", "MailCore", "MailDNS", "DKIM", "MailTLS", "MailTesting",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .testTarget(name: "DKIMTests", dependencies: ["DKIM", "MailSyntax"]),
        .testTarget(name: "MailDNSTests", dependencies: ["MailDNS"]),
        .testTarget(name: "IMAPProtocolTests", dependencies: ["IMAPProtocol", "MIME", "MailModel"]),
        .testTarget(name: "POP3ProtocolTests", dependencies: ["POP3Protocol"]),
        .testTarget(name: "POP3ServerTests", dependencies: [
            "POP3Server", "POP3Protocol", "MailModel", "MailStore", "StoreServer", "MailWorker", "MailCore", "MailIPC", "MailTesting",
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        .testTarget(name: "IMAPServerTests", dependencies: [
            "IMAPServer", "SpamFilter", "IMAPProtocol", "MailModel", "MailStore", "StoreServer", "MailWorker", "MailCore", "MailTLS", "MailIPC", "MailTesting",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "SMTPServerTests", dependencies: [
            "SMTPServer", "SpamFilter", "SMTPProtocol", "MailWorker", "MailCore", "MailTLS", "MailIPC", "MailTesting",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
    ]
)

// NIO glue and the store use the Swift 5 language mode for now (Sendable checking as warnings);
// the pure targets (MailSyntax, MIME, SMTPProtocol, IMAPProtocol, POP3Protocol, OutboundProtocol, LookupProtocol) build in Swift 6 mode.
for t in package.targets where !["MailSyntax", "MailSyntaxTests", "MailModel", "IMAPProtocol", "IMAPProtocolTests", "POP3Protocol", "POP3ProtocolTests", "MIME", "SMTPProtocol", "OutboundProtocol", "OutboundProtocolTests", "LookupProtocol", "MailTLS", "MIMETests", "SMTPProtocolTests", "LookupProtocolTests", "CMailShims", "CMailTLS"].contains(t.name) && t.type != .system {
    t.swiftSettings = (t.swiftSettings ?? []) + [.swiftLanguageMode(.v5)]
}
