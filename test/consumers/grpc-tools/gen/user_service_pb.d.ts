// The declarations `grpc_tools_node_protoc_ts` emits for protos/user_service.proto, by hand (see
// user_service_pb.js): without the google-protobuf `jspb.Message` base class and its static
// reader/writer helpers, which the stand-in classes do not have.
// package: users.v1
// file: user_service.proto

export class QueryBasicInfoByIDRequest {
    getId(): number;
    setId(value: number): QueryBasicInfoByIDRequest;

    serializeBinary(): Uint8Array;
    toObject(): QueryBasicInfoByIDRequest.AsObject;
    static deserializeBinary(bytes: Uint8Array): QueryBasicInfoByIDRequest;
}

export namespace QueryBasicInfoByIDRequest {
    export type AsObject = {
        id: number,
    }
}

export class BasicInfo {
    getId(): number;
    setId(value: number): BasicInfo;
    getName(): string;
    setName(value: string): BasicInfo;
    getEmail(): string;
    setEmail(value: string): BasicInfo;

    serializeBinary(): Uint8Array;
    toObject(): BasicInfo.AsObject;
    static deserializeBinary(bytes: Uint8Array): BasicInfo;
}

export namespace BasicInfo {
    export type AsObject = {
        id: number,
        name: string,
        email: string,
    }
}
