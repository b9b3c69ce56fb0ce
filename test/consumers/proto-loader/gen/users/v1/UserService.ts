// Original file: protos/user_service.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { BasicInfo as _users_v1_BasicInfo, BasicInfo__Output as _users_v1_BasicInfo__Output } from '../../users/v1/BasicInfo.js';
import type { QueryBasicInfoByIDRequest as _users_v1_QueryBasicInfoByIDRequest, QueryBasicInfoByIDRequest__Output as _users_v1_QueryBasicInfoByIDRequest__Output } from '../../users/v1/QueryBasicInfoByIDRequest.js';

export interface UserServiceClient extends grpc.Client {
  /**
   * Looks up the basic profile of one user.
   */
  QueryBasicInfoByID(argument: _users_v1_QueryBasicInfoByIDRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_users_v1_BasicInfo__Output>): grpc.ClientUnaryCall;
  QueryBasicInfoByID(argument: _users_v1_QueryBasicInfoByIDRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_users_v1_BasicInfo__Output>): grpc.ClientUnaryCall;
  QueryBasicInfoByID(argument: _users_v1_QueryBasicInfoByIDRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_users_v1_BasicInfo__Output>): grpc.ClientUnaryCall;
  QueryBasicInfoByID(argument: _users_v1_QueryBasicInfoByIDRequest, callback: grpc.requestCallback<_users_v1_BasicInfo__Output>): grpc.ClientUnaryCall;
  /**
   * Looks up the basic profile of one user.
   */
  queryBasicInfoById(argument: _users_v1_QueryBasicInfoByIDRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_users_v1_BasicInfo__Output>): grpc.ClientUnaryCall;
  queryBasicInfoById(argument: _users_v1_QueryBasicInfoByIDRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_users_v1_BasicInfo__Output>): grpc.ClientUnaryCall;
  queryBasicInfoById(argument: _users_v1_QueryBasicInfoByIDRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_users_v1_BasicInfo__Output>): grpc.ClientUnaryCall;
  queryBasicInfoById(argument: _users_v1_QueryBasicInfoByIDRequest, callback: grpc.requestCallback<_users_v1_BasicInfo__Output>): grpc.ClientUnaryCall;
  
}

export interface UserServiceHandlers extends grpc.UntypedServiceImplementation {
  /**
   * Looks up the basic profile of one user.
   */
  QueryBasicInfoByID: grpc.handleUnaryCall<_users_v1_QueryBasicInfoByIDRequest__Output, _users_v1_BasicInfo>;
  
}

export interface UserServiceDefinition extends grpc.ServiceDefinition {
  QueryBasicInfoByID: MethodDefinition<_users_v1_QueryBasicInfoByIDRequest, _users_v1_BasicInfo, _users_v1_QueryBasicInfoByIDRequest__Output, _users_v1_BasicInfo__Output>
}
