// HAND-WRITTEN in the form grpc-tools' `grpc_node_plugin` emits with `--grpc_out=grpc_js:gen` for
// protos/user_service.proto (the plugin is a prebuilt binary that cannot be fetched here; see
// ../README.md). A CommonJS module, as the plugin writes, hence gen/package.json.
// GENERATED CODE -- DO NOT EDIT!

'use strict';
var grpc = require('@grpc/grpc-js');
var user_service_pb = require('./user_service_pb.js');

function serialize_users_v1_BasicInfo(arg) {
  if (!(arg instanceof user_service_pb.BasicInfo)) {
    throw new Error('Expected argument of type users.v1.BasicInfo');
  }
  return Buffer.from(arg.serializeBinary());
}

function deserialize_users_v1_BasicInfo(buffer_arg) {
  return user_service_pb.BasicInfo.deserializeBinary(new Uint8Array(buffer_arg));
}

function serialize_users_v1_QueryBasicInfoByIDRequest(arg) {
  if (!(arg instanceof user_service_pb.QueryBasicInfoByIDRequest)) {
    throw new Error('Expected argument of type users.v1.QueryBasicInfoByIDRequest');
  }
  return Buffer.from(arg.serializeBinary());
}

function deserialize_users_v1_QueryBasicInfoByIDRequest(buffer_arg) {
  return user_service_pb.QueryBasicInfoByIDRequest.deserializeBinary(new Uint8Array(buffer_arg));
}


var UserServiceService = exports.UserServiceService = {
  // Looks up the basic profile of one user.
queryBasicInfoByID: {
    path: '/users.v1.UserService/QueryBasicInfoByID',
    requestStream: false,
    responseStream: false,
    requestType: user_service_pb.QueryBasicInfoByIDRequest,
    responseType: user_service_pb.BasicInfo,
    requestSerialize: serialize_users_v1_QueryBasicInfoByIDRequest,
    requestDeserialize: deserialize_users_v1_QueryBasicInfoByIDRequest,
    responseSerialize: serialize_users_v1_BasicInfo,
    responseDeserialize: deserialize_users_v1_BasicInfo,
  },
};

exports.UserServiceClient = grpc.makeGenericClientConstructor(UserServiceService, 'UserService');
