// HAND-WRITTEN: the declarations `grpc_tools_node_protoc_ts` (grpc_js mode) emits as
// `user_service_grpc_pb.d.ts` for protos/user_service.proto: a `ServiceDefinition` interface with
// literal requestStream/responseStream per method, the server interface, the client interface and
// `class UserServiceClient extends grpc.Client` whose overloads go from the shortest form to the
// fullest. Method keys are grpc-tools' names: the proto name with its first letter lower-cased
// (`queryBasicInfoByID`, not proto-loader's `queryBasicInfoById`). The generator needs a native
// protoc binary that cannot be downloaded here, so this file was written by hand.
//
// package: users.v1
// file: user_service.proto

/* tslint:disable */
/* eslint-disable */

import * as grpc from "@grpc/grpc-js";
import * as user_service_pb from "./user_service_pb";

interface IUserServiceService extends grpc.ServiceDefinition<grpc.UntypedServiceImplementation> {
    queryBasicInfoByID: IUserServiceService_IQueryBasicInfoByID;
}

interface IUserServiceService_IQueryBasicInfoByID extends grpc.MethodDefinition<user_service_pb.QueryBasicInfoByIDRequest, user_service_pb.BasicInfo> {
    path: "/users.v1.UserService/QueryBasicInfoByID";
    requestStream: false;
    responseStream: false;
    requestSerialize: grpc.serialize<user_service_pb.QueryBasicInfoByIDRequest>;
    requestDeserialize: grpc.deserialize<user_service_pb.QueryBasicInfoByIDRequest>;
    responseSerialize: grpc.serialize<user_service_pb.BasicInfo>;
    responseDeserialize: grpc.deserialize<user_service_pb.BasicInfo>;
}

export const UserServiceService: IUserServiceService;

export interface IUserServiceServer extends grpc.UntypedServiceImplementation {
    queryBasicInfoByID: grpc.handleUnaryCall<user_service_pb.QueryBasicInfoByIDRequest, user_service_pb.BasicInfo>;
}

export interface IUserServiceClient {
    queryBasicInfoByID(request: user_service_pb.QueryBasicInfoByIDRequest, callback: (error: grpc.ServiceError | null, response: user_service_pb.BasicInfo) => void): grpc.ClientUnaryCall;
    queryBasicInfoByID(request: user_service_pb.QueryBasicInfoByIDRequest, metadata: grpc.Metadata, callback: (error: grpc.ServiceError | null, response: user_service_pb.BasicInfo) => void): grpc.ClientUnaryCall;
    queryBasicInfoByID(request: user_service_pb.QueryBasicInfoByIDRequest, metadata: grpc.Metadata, options: Partial<grpc.CallOptions>, callback: (error: grpc.ServiceError | null, response: user_service_pb.BasicInfo) => void): grpc.ClientUnaryCall;
}

export class UserServiceClient extends grpc.Client implements IUserServiceClient {
    constructor(address: string, credentials: grpc.ChannelCredentials, options?: Partial<grpc.ClientOptions>);
    public queryBasicInfoByID(request: user_service_pb.QueryBasicInfoByIDRequest, callback: (error: grpc.ServiceError | null, response: user_service_pb.BasicInfo) => void): grpc.ClientUnaryCall;
    public queryBasicInfoByID(request: user_service_pb.QueryBasicInfoByIDRequest, metadata: grpc.Metadata, callback: (error: grpc.ServiceError | null, response: user_service_pb.BasicInfo) => void): grpc.ClientUnaryCall;
    public queryBasicInfoByID(request: user_service_pb.QueryBasicInfoByIDRequest, metadata: grpc.Metadata, options: Partial<grpc.CallOptions>, callback: (error: grpc.ServiceError | null, response: user_service_pb.BasicInfo) => void): grpc.ClientUnaryCall;
}
